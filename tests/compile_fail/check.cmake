# Runs one compile-failure snippet (cmake -P): the snippet must not compile, the first "error:" line
# g++ prints must contain the text of its "// expect:" line, the output must contain the text of
# each of its "// expect note:" lines, and the whole output must stay under MAX_LINES, so that a
# misuse gets mproc's message first and little else.
# In: CXX, SOURCE, FLAGS (a list), MAX_LINES.
file(STRINGS ${SOURCE} expect_line REGEX "^// expect: " LIMIT_COUNT 1)
if(NOT expect_line)
  message(FATAL_ERROR "${SOURCE}: no '// expect: <message>' line")
endif()
string(REGEX REPLACE "^// expect: " "" expect "${expect_line}")

execute_process(COMMAND ${CXX} ${FLAGS} -fsyntax-only ${SOURCE} RESULT_VARIABLE result OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled; it must be refused with: ${expect}")
endif()
string(REGEX MATCH "[^\n]*error:[^\n]*" first_error "${out}")
string(FIND "${first_error}" "${expect}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the first error is not mproc's message '${expect}':\n${first_error}\n\n${out}")
endif()
file(STRINGS ${SOURCE} note_lines REGEX "^// expect note: ")
foreach(note_line IN LISTS note_lines)
  string(REGEX REPLACE "^// expect note: " "" note "${note_line}")
  string(FIND "${out}" "${note}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the compiler's output does not say '${note}':\n${out}")
  endif()
endforeach()
string(REGEX MATCHALL "\n" newlines "${out}")
list(LENGTH newlines lines)
if(lines GREATER MAX_LINES)
  message(FATAL_ERROR "${lines} lines of compiler output (at most ${MAX_LINES}):\n${out}")
endif()
message(STATUS "refused with mproc's message first, in ${lines} lines")
