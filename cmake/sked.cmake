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
  if(NOT TARGET sked_test_watchdog)
    # Objects, not an archive: nothing refers to the watchdog, which registers itself.
    add_library(sked_test_watchdog OBJECT ${PROJECT_SOURCE_DIR}/tests/testing/watchdog.cc)
    target_link_libraries(sked_test_watchdog PRIVATE GTest::gtest)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} sked_test_watchdog GTest::gtest GTest::gmock
                        GTest::gtest_main)
  include(GoogleTest)
  # TIMEOUT: the slowest test takes about 12 s here; a test that hangs must fail by name
  # rather than hold the run (CTest sets no limit of its own without include(CTest)).
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS ${T_LABEL} ENVIRONMENT "${T_ENV}" TIMEOUT 180
    DISCOVERY_TIMEOUT 30)
endfunction()

# sked_embed_migrations(OUT_VAR BACKEND)
# Embeds the calling folder's migrations/*.sql (a store backend's) into a generated
# source, whose path it sets in OUT_VAR for the backend's library. The list of files
# is an input too: removing a migration must embed them again, and the timestamps of
# the files left would not say so (file(CONFIGURE) rewrites the list only when it
# changes).
function(sked_embed_migrations out_var backend)
  file(GLOB migrations CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/migrations/*.sql)
  set(list_file ${CMAKE_CURRENT_BINARY_DIR}/migrations.list)
  file(CONFIGURE OUTPUT ${list_file} CONTENT "${migrations}\n")
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_migrations.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND}
            -DMIGRATIONS_DIR=${CMAKE_CURRENT_SOURCE_DIR}/migrations
            -DOUT=${out} -DBACKEND=${backend}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_migrations.cmake
    DEPENDS ${migrations} ${list_file} ${PROJECT_SOURCE_DIR}/cmake/embed_migrations.cmake
    COMMENT "Embedding the ${backend} migrations"
    VERBATIM)
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
