#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "outboxd/cli.hpp"

int main(int argc, char** argv) {
  try {
    return outboxd::run_cli(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "outboxd: fatal: " << e.what() << "\n";
    return 1;
  }
}
