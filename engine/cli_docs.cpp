#include "cli_docs.hpp"

#include <algorithm>
#include <set>
#include <sstream>

namespace flotilla {
namespace {

// ---------------------------------------------------------------------------------------
// Usage words

ArgKind kind_of(std::string word) {
  if (word == "FILE") return ArgKind::topology_file;
  if (word == "NODE") return ArgKind::node;
  if (word == "SERVICE") return ArgKind::service;
  if (word == "SERVICE=N") return ArgKind::service_count;
  if (word == "NAME") return ArgKind::node_or_service;
  if (word == "SHELL") return ArgKind::shell;
  if (word == "DIR") return ArgKind::directory;
  if (word.find('|') != std::string::npos) return ArgKind::choice;
  return ArgKind::free_text;
}

/// The words an option's value is completed from; empty for free text.
enum class ValueKind { none, free, words, directory, file, node };
struct ValueCompletion {
  ValueKind kind = ValueKind::free;
  std::string words;
};

ValueCompletion value_completion(const std::string& long_name) {
  if (long_name == "output") return {ValueKind::words, "text json"};
  if (long_name == "log-level") return {ValueKind::words, "trace debug info warn error"};
  if (long_name == "plugin-path" || long_name == "state-dir") return {ValueKind::directory, {}};
  if (long_name == "out" || long_name == "plan") return {ValueKind::file, {}};
  if (long_name == "node") return {ValueKind::node, {}};
  return {ValueKind::free, {}};
}

std::vector<OptionDoc> all_options(const CommandDoc& c, const std::vector<OptionDoc>& common) {
  std::vector<OptionDoc> out = c.options;
  out.insert(out.end(), common.begin(), common.end());
  return out;
}

// ---------------------------------------------------------------------------------------
// roff

/// Text escaped for roff: backslashes doubled, dashes as \-, and a line that would start with
/// a control character guarded by \&.
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char ch : text) {
    if (line_start && (ch == '.' || ch == '\'')) out += "\\&";
    line_start = ch == '\n';
    if (ch == '\\') out += "\\e";
    else if (ch == '-') out += "\\-";
    else out += ch;
  }
  return out;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  return s;
}

std::string header(const std::string& title, const std::string& version) {
  return ".TH " + upper(roff(title)) + " 1 \"\" \"flotilla " + roff(version) + "\" \"Flotilla Manual\"\n";
}

void options_section(std::ostringstream& os, const std::vector<OptionDoc>& options) {
  for (const auto& o : options) {
    os << ".TP\n";
    if (o.short_name) os << "\\fB\\-" << o.short_name << "\\fR, ";
    os << "\\fB\\-\\-" << roff(o.long_name) << "\\fR";
    if (o.takes_value) os << " \\fIvalue\\fR";
    os << "\n" << roff(o.description) << "\n";
  }
}

void exit_status_section(std::ostringstream& os, const std::string& exit_codes) {
  os << ".SH EXIT STATUS\n";
  std::istringstream lines(exit_codes);
  for (std::string line; std::getline(lines, line);) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string::npos || line.back() == ':') continue;  // the "Exit codes:" heading
    const auto gap = line.find(' ', start);
    os << ".TP\n.B " << roff(line.substr(start, gap - start)) << "\n" << roff(line.substr(line.find_first_not_of(' ', gap))) << "\n";
  }
}

// ---------------------------------------------------------------------------------------
// Shell quoting

std::string sh_single(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

/// A description inside a zsh _arguments spec: brackets and colons are special there.
std::string zsh_description(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '[' || ch == ']' || ch == ':' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

std::string join_names(const std::vector<CommandDoc>& commands) {
  std::string out;
  for (const auto& c : commands) out += (out.empty() ? "" : " ") + c.name;
  return out;
}

std::string option_words(const std::vector<OptionDoc>& options) {
  std::string out;
  for (const auto& o : options) {
    out += (out.empty() ? "--" : " --") + o.long_name;
    if (o.short_name) out += std::string(" -") + o.short_name;
  }
  return out;
}

/// The bash words that complete one positional argument.
std::string bash_positional(const Positional& arg) {
  switch (arg.kind) {
    case ArgKind::topology_file: return "_flotilla_files";
    case ArgKind::node: return "_flotilla_names \"$file\" nodes";
    case ArgKind::service: return "_flotilla_names \"$file\" services";
    case ArgKind::service_count: return "_flotilla_names \"$file\" services =";
    case ArgKind::node_or_service: return "_flotilla_names \"$file\" nodes services";
    case ArgKind::shell: return "COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\"))";
    case ArgKind::directory: return "COMPREPLY=($(compgen -d -- \"$cur\"))";
    case ArgKind::choice: return "COMPREPLY=($(compgen -W " + sh_single(arg.words) + " -- \"$cur\"))";
    case ArgKind::free_text: return ":";
  }
  return ":";
}

std::string zsh_positional(const Positional& arg) {
  switch (arg.kind) {
    case ArgKind::topology_file: return "topology file:_files -g \"*.toml\"";
    case ArgKind::node: return "node:{_flotilla_names nodes}";
    case ArgKind::service: return "service:{_flotilla_names services}";
    case ArgKind::service_count: return "service=replicas:{_flotilla_names services =}";
    case ArgKind::node_or_service: return "node or service:{_flotilla_names nodes services}";
    case ArgKind::shell: return "shell:(bash zsh)";
    case ArgKind::directory: return "directory:_directories";
    case ArgKind::choice: return "subcommand:(" + arg.words + ")";
    case ArgKind::free_text: return "text: ";
  }
  return "text: ";
}

std::string zsh_value(const OptionDoc& o) {
  const auto v = value_completion(o.long_name);
  switch (v.kind) {
    case ValueKind::words: return ":" + o.long_name + ":(" + v.words + ")";
    case ValueKind::directory: return ":directory:_directories";
    case ValueKind::file: return ":file:_files";
    case ValueKind::node: return ":node:{_flotilla_names nodes}";
    case ValueKind::none:
    case ValueKind::free: return ":" + o.long_name + ": ";
  }
  return "";
}

}  // namespace

std::vector<Positional> positionals(const std::string& usage) {
  std::vector<Positional> out;
  std::istringstream words(usage);
  bool option_value = false;  // the word after "[--node" is that option's value, not an argument
  for (std::string w; words >> w;) {
    const bool opened = w.front() == '[';
    std::string bare = w;
    bare.erase(std::remove_if(bare.begin(), bare.end(), [](char ch) { return ch == '[' || ch == ']'; }), bare.end());
    if (option_value) {
      option_value = !w.ends_with(']') && !opened;
      continue;
    }
    if (bare.starts_with("-")) {
      option_value = !w.ends_with(']');
      continue;
    }
    const ArgKind kind = kind_of(bare);
    std::string choices;
    if (kind == ArgKind::choice) {
      choices = bare;
      std::replace(choices.begin(), choices.end(), '|', ' ');
    }
    out.push_back({kind, std::move(choices)});
  }
  return out;
}

std::vector<ArgKind> positional_kinds(const std::string& usage) {
  std::vector<ArgKind> out;
  for (const auto& p : positionals(usage)) out.push_back(p.kind);
  return out;
}

std::string man_page_main(const std::vector<CommandDoc>& commands, const std::vector<OptionDoc>& common, const std::string& version,
                          const std::string& exit_codes) {
  std::ostringstream os;
  os << header("flotilla", version) << ".SH NAME\nflotilla \\- bring up a cluster with discovery, load balancing, metrics and logs from one file\n"
     << ".SH SYNOPSIS\n.B flotilla\n\\fICOMMAND\\fR [\\fIARGS\\fR] [\\fIOPTIONS\\fR]\n"
     << ".SH DESCRIPTION\nFlotilla reads a topology file (TOML) that names a driver, node groups, services and addons, "
        "and makes the cluster match it: the driver creates the nodes, the runtime runs the services' instances, and the "
        "addons add service discovery, load balancing, metrics and log collection. Every command that changes the "
        "cluster can be run again: it continues where a failed or interrupted run stopped.\n"
     << ".SH COMMANDS\n";
  for (const auto& c : commands)
    os << ".TP\n.BR flotilla\\-" << roff(c.name) << " (1)\n" << roff(c.summary) << ".\n";
  os << ".SH OPTIONS\nEvery command accepts:\n";
  options_section(os, common);
  exit_status_section(os, exit_codes);
  os << ".SH ENVIRONMENT\n.TP\n.B FLOTILLA_PLUGIN_PATH\nColon-separated directories searched for plugins before the built-in ones.\n"
     << ".TP\n.B NO_COLOR\nWhen set to a non-empty value, nothing is coloured: neither the step marks nor the log levels.\n"
     << ".SH EXAMPLE\n.nf\nflotilla up configs/local.toml\nflotilla status configs/local.toml\nflotilla down configs/local.toml\n.fi\n";
  return os.str();
}

std::string man_page_command(const CommandDoc& c, const std::vector<OptionDoc>& common, const std::string& version,
                             const std::string& exit_codes) {
  std::ostringstream os;
  os << header("flotilla-" + c.name, version) << ".SH NAME\nflotilla\\-" << roff(c.name) << " \\- " << roff(c.summary) << "\n"
     << ".SH SYNOPSIS\n.B flotilla " << roff(c.name) << "\n" << roff(c.usage) << "\n"
     << ".SH DESCRIPTION\n" << roff(c.summary) << ".\n.SH OPTIONS\n";
  options_section(os, all_options(c, common));
  os << ".SH EXAMPLE\n.nf\n" << roff(c.example) << "\n.fi\n";
  exit_status_section(os, exit_codes);
  os << ".SH SEE ALSO\n.BR flotilla (1)\n";
  return os.str();
}

std::string bash_completion(const std::vector<CommandDoc>& commands, const std::vector<OptionDoc>& common) {
  std::set<std::string> value_options;  // every option that takes a value, with dashes
  for (const auto& c : commands)
    for (const auto& o : all_options(c, common))
      if (o.takes_value) {
        value_options.insert("--" + o.long_name);
        if (o.short_name) value_options.insert(std::string("-") + o.short_name);
      }
  std::ostringstream os;
  os << "# bash completion for flotilla; written by `flotilla completion bash`.\n"
     << "# Load it with:  source <(flotilla completion bash)\n\n"
     << "_flotilla_files() {\n  compopt -o filenames 2>/dev/null\n"
     << "  COMPREPLY=($(compgen -d -- \"$cur\") $(compgen -f -X '!*.toml' -- \"$cur\"))\n}\n\n"
     << "# _flotilla_names FILE KIND... [=]: node or service names of the topology FILE.\n"
     << "_flotilla_names() {\n  local file=$1 suffix=\"\" kinds=() names\n  shift\n"
     << "  for k in \"$@\"; do [[ $k == = ]] && suffix== || kinds+=(\"$k\"); done\n"
     << "  [[ -n $file ]] || return 0\n"
     << "  names=$(\"${COMP_WORDS[0]}\" __names \"$file\" \"${kinds[@]}\" 2>/dev/null) || return 0\n"
     << "  [[ -n $suffix ]] && compopt -o nospace 2>/dev/null\n"
     << "  local IFS=$'\\n'\n  COMPREPLY=($(compgen -W \"$names\" -S \"$suffix\" -- \"$cur\"))\n}\n\n"
     << "_flotilla() {\n  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
     << "  local cmd=\"\" file=\"\" npos=0 i w skip=0\n  COMPREPLY=()\n"
     << "  for ((i = 1; i < COMP_CWORD; i++)); do\n    w=${COMP_WORDS[i]}\n"
     << "    if ((skip)); then skip=0; continue; fi\n    case $w in\n";
  std::string alternatives;
  for (const auto& v : value_options) alternatives += (alternatives.empty() ? "" : "|") + v;
  os << "      " << alternatives << ") skip=1 ;;\n      -*) ;;\n"
     << "      *) if [[ -z $cmd ]]; then cmd=$w; else npos=$((npos + 1)); ((npos == 1)) && file=$w; fi ;;\n"
     << "    esac\n  done\n"
     << "  if [[ -z $cmd ]]; then\n    COMPREPLY=($(compgen -W " << sh_single(join_names(commands) + " --help --version")
     << " -- \"$cur\"))\n    return 0\n  fi\n"
     << "  case $prev in\n";
  std::set<std::string> done;
  for (const auto& c : commands)
    for (const auto& o : all_options(c, common)) {
      if (!o.takes_value || !done.insert(o.long_name).second) continue;
      os << "    --" << o.long_name << (o.short_name ? std::string("|-") + o.short_name : "") << ")\n      ";
      const auto v = value_completion(o.long_name);
      switch (v.kind) {
        case ValueKind::words: os << "COMPREPLY=($(compgen -W " << sh_single(v.words) << " -- \"$cur\"))"; break;
        case ValueKind::directory: os << "COMPREPLY=($(compgen -d -- \"$cur\"))"; break;
        case ValueKind::file: os << "compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\"))"; break;
        case ValueKind::node: os << "_flotilla_names \"$file\" nodes"; break;
        case ValueKind::none:
        case ValueKind::free: os << ":"; break;
      }
      os << "\n      return 0 ;;\n";
    }
  os << "  esac\n  case $cmd in\n";
  for (const auto& c : commands) {
    os << "    " << c.name << ")\n"
       << "      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W " << sh_single(option_words(all_options(c, common)))
       << " -- \"$cur\")); return 0; fi\n      case $npos in\n";
    const auto args = positionals(c.usage);
    for (std::size_t i = 0; i < args.size(); ++i) os << "        " << i << ") " << bash_positional(args[i]) << " ;;\n";
    os << "      esac ;;\n";
  }
  os << "  esac\n  return 0\n}\n\ncomplete -F _flotilla flotilla\n";
  return os.str();
}

std::string zsh_completion(const std::vector<CommandDoc>& commands, const std::vector<OptionDoc>& common) {
  std::ostringstream os;
  os << "#compdef flotilla\n# zsh completion for flotilla; written by `flotilla completion zsh`.\n"
     << "# Install it as _flotilla in a directory of $fpath, or load it with:  source <(flotilla completion zsh)\n\n"
     << "# _flotilla_names KIND... [=]: node or service names of the topology file on the line.\n"
     << "_flotilla_names() {\n  local suffix=\"\" kinds=() names\n"
     << "  for k in \"$@\"; do [[ $k == = ]] && suffix== || kinds+=($k); done\n"
     << "  local file=${line[1]}\n  [[ -n $file ]] || return 1\n"
     << "  names=(${(f)\"$(${service:-flotilla} __names ${(Q)file} $kinds 2>/dev/null)\"})\n"
     << "  compadd -S \"$suffix\" -a names\n}\n\n"
     << "_flotilla() {\n  local -a commands\n  commands=(\n";
  for (const auto& c : commands) os << "    " << sh_single(c.name + ":" + c.summary) << "\n";
  os << "  )\n  if (( CURRENT == 2 )); then\n    _describe -t commands 'flotilla command' commands\n    return\n  fi\n"
     << "  local cmd=${words[2]}\n  shift words\n  (( CURRENT-- ))\n  local -a line\n  case $cmd in\n";
  for (const auto& c : commands) {
    os << "    " << c.name << ")\n      _arguments -s \\\n";
    for (const auto& o : all_options(c, common)) {
      const std::string desc = "[" + zsh_description(o.description) + "]" + (o.takes_value ? zsh_value(o) : "");
      if (o.short_name)
        os << "        " << sh_single("(-" + std::string(1, o.short_name) + " --" + o.long_name + ")") << "{-" << o.short_name
           << ",--" << o.long_name << "}" << sh_single(desc) << " \\\n";
      else
        os << "        " << sh_single("--" + o.long_name + desc) << " \\\n";
    }
    const auto args = positionals(c.usage);
    for (std::size_t i = 0; i < args.size(); ++i) os << "        " << sh_single(std::to_string(i + 1) + ":" + zsh_positional(args[i])) << " \\\n";
    os << "      ;;\n";
  }
  os << "  esac\n}\n\n_flotilla \"$@\"\n";
  return os.str();
}

}  // namespace flotilla
