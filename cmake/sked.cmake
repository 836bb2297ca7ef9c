# sked_test(NAME SOURCES a.cc b.cc LIBS x y LABEL unit [ENV K=V ...])
# One helper registers every test target, so labels and discovery stay uniform.
function(sked_test name)
  cmake_parse_arguments(T "" "LABEL" "SOURCES;LIBS;ENV" ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${T_LABEL} ENVIRONMENT "${T_ENV}"
    DISCOVERY_TIMEOUT 30)
endfunction()
