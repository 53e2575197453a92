# expect_error.cmake: runs `TOOL timeline INPUT -o OUTPUT EXTRA...` (ctest -P script, so that one
# test can check three things a PASS_REGULAR_EXPRESSION cannot check together): the exit status
# is not 0 (and not a crash), standard error is one line matching EXPECT, and OUTPUT was not written.
#   cmake -DTOOL=... -DINPUT=... -DOUTPUT=... -DEXPECT=regex [-DEXTRA=--width;10] -P expect_error.cmake
file(REMOVE ${OUTPUT})
execute_process(COMMAND ${TOOL} timeline ${INPUT} -o ${OUTPUT} ${EXTRA}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(STRIP "${err}" line)
if(NOT status MATCHES "^[0-9]+$")
  message(FATAL_ERROR "mproc timeline crashed (${status}); stderr: ${err}")
elseif(status EQUAL 0)
  message(FATAL_ERROR "mproc timeline exited 0 on a bad input; stdout: ${out}")
elseif(line MATCHES "\n")
  message(FATAL_ERROR "more than one line on stderr:\n${err}")
elseif(NOT line MATCHES "${EXPECT}")
  message(FATAL_ERROR "stderr does not match '${EXPECT}': ${err}")
elseif(EXISTS ${OUTPUT})
  message(FATAL_ERROR "${OUTPUT} was written")
endif()
message(STATUS "exit ${status}: ${line}")
