#!/bin/bash
# The container image's HEALTHCHECK: GET /healthz on outboxd's admin server, exit 0 on 200 and 1
# otherwise. Bash builtins only (/dev/tcp, read -t), because the slim runtime image has no curl
# or wget. The address is the daemon's own, OUTBOXD_ADMIN_ADDRESS (the image sets 0.0.0.0:9187);
# a wildcard host is probed on loopback.
address=${OUTBOXD_ADMIN_ADDRESS:-127.0.0.1:9187}
if [[ $address == off ]]; then
    echo "outboxd-healthcheck: the admin server is off (OUTBOXD_ADMIN_ADDRESS=off)" >&2
    exit 1
fi
port=${address##*:}
host=${address%:*}
host=${host#[}
host=${host%]}
case $host in
    0.0.0.0 | '') host=127.0.0.1 ;;
    ::) host=::1 ;;
esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
    echo "outboxd-healthcheck: cannot connect to $address" >&2
    exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
status_line=
IFS= read -r -t 4 status_line <&3
exec 3<&-
if [[ $status_line != "HTTP/1.1 200 "* ]]; then
    echo "outboxd-healthcheck: /healthz answered: ${status_line%$'\r'}" >&2
    exit 1
fi
