# outboxd_add_test(<file>): one test executable per test source, registered with ctest.
#   tests/foo_test.cpp    needs nothing (label "unit");
#   tests/foo_pgtest.cpp  needs the test PostgreSQL named by OUTBOXD_TEST_DATABASE_URL
#                         (label "pg"; scripts/test.sh starts one).
function(outboxd_add_test source)
  get_filename_component(name "${source}" NAME_WE)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE outboxd_core outboxd_test_support GTest::gtest GTest::gtest_main)
  if(name MATCHES "_pgtest$")
    set(label pg)
  else()
    set(label unit)
  endif()
  if(label STREQUAL "unit")
    # The tsan preset builds only these: `cmake --build --preset tsan` builds this target.
    add_dependencies(outboxd_unit_tests ${name})
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 600)
endfunction()
