// SPDX-License-Identifier: Apache-2.0
// The command line: `labwatch COMMAND [OPTIONS]`, the contract of PRODUCT.md.
#pragma once

#include "daemon/exit_codes.hpp"  // the codes run_cli returns

namespace labwatch::daemon {

// Runs the command named by argv[1]; returns the process exit code. Catches every exception.
int run_cli(int argc, char** argv);

}  // namespace labwatch::daemon
