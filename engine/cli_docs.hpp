// Manual pages and shell completion scripts, written from the CLI's command table so that
// `--help`, `man flotilla-up` and tab completion cannot drift apart.
#pragma once

#include <string>
#include <vector>

namespace flotilla {

/// One option of a command, as `--help` shows it.
struct OptionDoc {
  std::string long_name;   ///< without dashes: "output"
  char short_name = 0;     ///< 'o', or 0
  bool takes_value = false;
  std::string description;
};

/// One command of the table: what `flotilla COMMAND --help` prints.
struct CommandDoc {
  std::string name;
  std::string summary;
  std::string usage;    ///< after "flotilla NAME": "FILE [SERVICE] [--node N]"
  std::string example;
  std::vector<OptionDoc> options;
};

/// What a positional argument of a command names, read from its usage word (FILE, NODE,
/// NAME, SERVICE=N, ...); completion offers candidates of that kind.
enum class ArgKind { topology_file, node, service, service_count, node_or_service, shell, directory, choice, free_text };

/// One positional argument of a usage line: what it is, and for a choice ("show|restore-backup")
/// the words it is one of, separated by spaces.
struct Positional {
  ArgKind kind;
  std::string words;
};

/// The positional arguments of `usage` in order ("FILE [SERVICE] [--node N]" gives FILE and SERVICE).
[[nodiscard]] std::vector<Positional> positionals(const std::string& usage);
[[nodiscard]] std::vector<ArgKind> positional_kinds(const std::string& usage);

/// The man page flotilla(1): every command, the common options, the exit codes.
[[nodiscard]] std::string man_page_main(const std::vector<CommandDoc>& commands, const std::vector<OptionDoc>& common,
                                        const std::string& version, const std::string& exit_codes);

/// The man page flotilla-NAME(1) of one command.
[[nodiscard]] std::string man_page_command(const CommandDoc& command, const std::vector<OptionDoc>& common,
                                           const std::string& version, const std::string& exit_codes);

/// A bash completion script for `complete -F`; node and service names come from
/// `flotilla __names FILE nodes|services`, which reads the topology file only.
[[nodiscard]] std::string bash_completion(const std::vector<CommandDoc>& commands, const std::vector<OptionDoc>& common);

/// A zsh completion function (#compdef flotilla), with the same candidates as bash's.
[[nodiscard]] std::string zsh_completion(const std::vector<CommandDoc>& commands, const std::vector<OptionDoc>& common);

}  // namespace flotilla
