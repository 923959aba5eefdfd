# Generates a C++ source holding every file of sql/migrations and sql/adapters as a string.
# Run by the build (see CMakeLists.txt) with -DSOURCE_DIR=... -DOUTPUT=...
set(delimiter "outboxd_sql")

function(append_files out_var dir)
  file(GLOB files "${dir}/*.sql")
  list(SORT files)
  set(body "")
  foreach(path IN LISTS files)
    get_filename_component(name "${path}" NAME)
    file(READ "${path}" content)
    string(FIND "${content}" ")${delimiter}\"" clash)
    if(NOT clash EQUAL -1)
      message(FATAL_ERROR "${path} contains the raw-string delimiter )${delimiter}\"")
    endif()
    string(APPEND body "    {\"${name}\", R\"${delimiter}(${content})${delimiter}\"},\n")
  endforeach()
  set(${out_var} "${body}" PARENT_SCOPE)
endfunction()

append_files(migrations "${SOURCE_DIR}/sql/migrations")
append_files(adapters "${SOURCE_DIR}/sql/adapters")

file(WRITE "${OUTPUT}.tmp" "// Generated from sql/ by cmake/embed_sql.cmake. Do not edit.
#include \"outboxd/sql_bundle.hpp\"

namespace outboxd::sql_bundle {

const std::vector<sql_file>& migrations() {
  static const std::vector<sql_file> files{
${migrations}  };
  return files;
}

const std::vector<sql_file>& adapters() {
  static const std::vector<sql_file> files{
${adapters}  };
  return files;
}

}  // namespace outboxd::sql_bundle
")
# Only touch the output when it changed, so an unchanged sql/ does not trigger a rebuild.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
