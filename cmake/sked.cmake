# sked_test([NAME] name SOURCES a.cc b.cc LIBS x y [LABEL unit] [ENV K=V ...])
# One helper registers every test target, so labels and discovery stay uniform.
# LABEL is what the test needs: unit (nothing external), postgres, docker, aws,
# blackbox (the real binary).
function(sked_test)
  set(args ${ARGN})
  list(GET args 0 first)
  if(NOT first STREQUAL "NAME")
    list(PREPEND args NAME)  # the positional form: sked_test(name SOURCES ...)
  endif()
  cmake_parse_arguments(T "" "NAME;LABEL" "SOURCES;LIBS;ENV" ${args})
  if(NOT T_NAME)
    message(FATAL_ERROR "sked_test: NAME is required")
  endif()
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS ${T_LABEL} ENVIRONMENT "${T_ENV}"
    DISCOVERY_TIMEOUT 30)
endfunction()
