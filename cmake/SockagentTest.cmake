# sockagent_test(): the one way to declare a test.
#
#   sockagent_test(<name>
#     [SOURCES <file>...]        GoogleTest sources (default: <name>.cc)
#     [LIBS <target>...]         linked PRIVATE, with GTest::gmock and
#                                GTest::gtest_main (GTest::gtest if OWN_MAIN)
#     [OWN_MAIN]                 the sources define main()
#     [DEFINES <def>...]         compile definitions
#     [DEPENDS <target>...]      built before the test (e.g. sockagentd)
#     [COMMAND <cmd> <arg>...]   a script test instead of a GoogleTest binary
#     [WORKING_DIRECTORY <dir>]  (COMMAND only)
#     [ENVIRONMENT <VAR=value>...]
#     [LABELS <label>...]        added to the folder's label (see below)
#     [TIMEOUT <seconds>]        per test (default 120)
#     [SKIP_RETURN_CODE <rc>])   exit code meaning "skipped" (e.g. 77)
#
# A GoogleTest binary is built with our warnings (sockagent_strict) and the
# source tree on its include path; every TEST in it becomes one ctest test.
# Every test carries the label of its folder under tests/ (server/io,
# client, process, ...), so `ctest -L server/` runs a subtree.
#
# A source that does not exist is a configure error (add_executable), and
# a target a test names but nobody defines is a generate error
# ($<TARGET_FILE:...>): a renamed file never silently drops a test.
#
# Under SOCKAGENT_SANITIZE (ASan + UBSan run 2-3x slower) timeouts double.
include(GoogleTest)

function(sockagent_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "OWN_MAIN"
    "TIMEOUT;SKIP_RETURN_CODE;WORKING_DIRECTORY"
    "SOURCES;LIBS;DEFINES;DEPENDS;COMMAND;ENVIRONMENT;LABELS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "sockagent_test(${name}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  if(SOCKAGENT_SANITIZE)
    math(EXPR arg_TIMEOUT "${arg_TIMEOUT} * 2")
  endif()
  # The folder's label goes on the directory, so ctest gives it to every
  # test of the folder, discovered GoogleTest cases included.
  file(RELATIVE_PATH folder ${PROJECT_SOURCE_DIR}/tests
    ${CMAKE_CURRENT_SOURCE_DIR})
  get_property(dir_labels DIRECTORY PROPERTY LABELS)
  if(NOT folder IN_LIST dir_labels)
    set_property(DIRECTORY APPEND PROPERTY LABELS ${folder})
  endif()
  # Test properties as name/value pairs; a list value keeps its semicolons
  # escaped through gtest_discover_tests' generated script.
  set(props TIMEOUT ${arg_TIMEOUT})
  foreach(prop LABELS ENVIRONMENT SKIP_RETURN_CODE)
    if(DEFINED arg_${prop})
      string(REPLACE ";" "\\;" value "${arg_${prop}}")
      list(APPEND props ${prop} "${value}")
    endif()
  endforeach()

  if(arg_COMMAND)
    if(arg_SOURCES OR arg_LIBS OR arg_DEFINES OR arg_OWN_MAIN)
      message(FATAL_ERROR "sockagent_test(${name}): COMMAND excludes "
        "SOURCES, LIBS, DEFINES and OWN_MAIN")
    endif()
    if(NOT arg_WORKING_DIRECTORY)
      set(arg_WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    endif()
    add_test(NAME ${name} COMMAND ${arg_COMMAND}
      WORKING_DIRECTORY ${arg_WORKING_DIRECTORY})
    set_tests_properties(${name} PROPERTIES ${props})
    return()
  endif()

  if(NOT arg_SOURCES)
    set(arg_SOURCES ${name}.cc)
  endif()
  add_executable(${name} ${arg_SOURCES})
  set(gtest_main GTest::gtest_main)
  if(arg_OWN_MAIN)
    set(gtest_main GTest::gtest)
  endif()
  target_link_libraries(${name} PRIVATE ${arg_LIBS} GTest::gmock ${gtest_main})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  if(arg_DEFINES)
    target_compile_definitions(${name} PRIVATE ${arg_DEFINES})
  endif()
  if(arg_DEPENDS)
    add_dependencies(${name} ${arg_DEPENDS})
  endif()
  sockagent_strict(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()
