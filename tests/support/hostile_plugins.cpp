#include "support/hostile_plugins.hpp"

#include <elf.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace fs = std::filesystem;

namespace flotilla::test {
namespace {

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

std::vector<HostileCandidate> make_hostile_plugin_dir(const fs::path& dir, const fs::path& real_plugin) {
  fs::create_directories(dir);
  const std::string elf = read_all(real_plugin);
  if (elf.size() < 8192) throw std::runtime_error(real_plugin.string() + " is too small to cut");
  std::vector<HostileCandidate> out;

  write_all(dir / "driver_truncated.so", elf.substr(0, 4096));
  out.push_back({"driver_truncated.so", "truncated ELF (4096 of "});
  // The section headers sit at the end of the file: cutting the tail leaves the segments whole.
  write_all(dir / "driver_tail_cut.so", elf.substr(0, elf.size() - 64));
  out.push_back({"driver_tail_cut.so", "truncated ELF (" + std::to_string(elf.size() - 64) + " of "});
  write_all(dir / "driver_empty.so", "");
  out.push_back({"driver_empty.so", "empty file"});
  write_all(dir / "driver_text.so", "this is a text file, not a library\n");
  out.push_back({"driver_text.so", "not an ELF file"});

  std::string other_class = elf;
  other_class[EI_CLASS] = ELFCLASS32;
  write_all(dir / "driver_other_class.so", other_class);
  out.push_back({"driver_other_class.so", "class 32-bit"});
  std::string other_machine = elf;
  Elf64_Half machine = 0;
  std::memcpy(&machine, elf.data() + offsetof(Elf64_Ehdr, e_machine), sizeof machine);
  const Elf64_Half foreign = machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
  other_machine.replace(offsetof(Elf64_Ehdr, e_machine), sizeof foreign, reinterpret_cast<const char*>(&foreign), sizeof foreign);
  write_all(dir / "driver_other_machine.so", other_machine);
  out.push_back({"driver_other_machine.so", "for machine " + std::to_string(foreign)});

  fs::create_directory(dir / "driver_directory.so");
  out.push_back({"driver_directory.so", "is a directory"});
  fs::create_symlink("driver_loop_b.so", dir / "driver_loop_a.so");
  fs::create_symlink("driver_loop_a.so", dir / "driver_loop_b.so");
  out.push_back({"driver_loop_a.so", "symlink loop"});
  out.push_back({"driver_loop_b.so", "symlink loop"});
  fs::create_symlink("nothing-here.so", dir / "driver_dangling.so");
  out.push_back({"driver_dangling.so", "No such file"});
  if (::mkfifo((dir / "driver_fifo.so").c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed in " + dir.string());
  out.push_back({"driver_fifo.so", "is a FIFO"});
  return out;
}

}  // namespace flotilla::test
