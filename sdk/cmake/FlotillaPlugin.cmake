# flotilla_add_plugin(TARGET SOURCES... [OUTPUT_DIRECTORY DIR])
#
# Builds a Flotilla plugin: a MODULE library named TARGET.so (no "lib" prefix) with hidden
# visibility, so that the entry symbol is the only one it exports. TARGET is conventionally
# KIND_NAME, e.g. addon_greeter.
function(flotilla_add_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "OUTPUT_DIRECTORY" "")
  add_library(${target} MODULE ${ARG_UNPARSED_ARGUMENTS})
  if(TARGET Flotilla::sdk)
    target_link_libraries(${target} PRIVATE Flotilla::sdk)
  else()
    target_link_libraries(${target} PRIVATE flotilla_sdk)
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # An unresolved symbol is a link error here, not a load error on the user's machine; and
  # the entry symbol is the only one exported (not even libstdc++'s weak template symbols).
  set(map ${CMAKE_CURRENT_BINARY_DIR}/${target}.exports.map)
  file(WRITE ${map} "{ global: flotilla_plugin_entry; local: *; };\n")
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,--version-script=${map})
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  elseif(DEFINED FLOTILLA_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${FLOTILLA_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
