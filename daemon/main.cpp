// SPDX-License-Identifier: Apache-2.0
// labwatch entry point: dispatches to the subcommands in cli.cpp.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return labwatch::daemon::run_cli(argc, argv); }
