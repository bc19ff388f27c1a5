// The flotilla executable: a thin main over the engine library.
#include "cli.hpp"

#include <string>
#include <vector>

int main(int argc, char** argv) { return flotilla::run_cli(std::vector<std::string>(argv + 1, argv + argc)); }
