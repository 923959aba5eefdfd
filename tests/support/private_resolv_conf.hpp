#pragma once

#include <string>

namespace outboxd::test {

// Gives this process its own view of /etc/resolv.conf with `contents`, leaving the machine's file
// untouched: a private mount namespace (unshare), made a private subtree so that nothing
// propagates back, with a temporary file bind-mounted over /etc/resolv.conf. Affects the calling
// thread and the threads it starts from then on, so call it before starting any resolver. Needs
// root (CAP_SYS_ADMIN). Returns an empty string on success, otherwise why it could not.
std::string use_private_resolv_conf(const std::string& contents);

}  // namespace outboxd::test
