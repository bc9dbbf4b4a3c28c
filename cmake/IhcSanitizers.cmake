# Sanitizers for every target of the project (libraries, ihcscore, tests, fuzzers).
#
#   -DIHC_SANITIZE=                   none (default)
#   -DIHC_SANITIZE=address,undefined  AddressSanitizer + LeakSanitizer + UBSan (gcc or clang)
#   -DIHC_SANITIZE=thread             ThreadSanitizer (cannot be combined with address)
#
# UBSan findings abort (-fno-sanitize-recover=undefined), so a test that triggers one fails.
# With IHC_BUILD_FUZZERS (clang only) every target is also compiled with
# -fsanitize=fuzzer-no-link so that libFuzzer sees the coverage of the project's libraries; the
# harnesses in tests/fuzz link with -fsanitize=fuzzer.
# Dependencies (OpenCV, oneTBB, OpenSlide, libtiff, libjpeg-turbo) are Debian's, not
# instrumented: see tests/sanitizers/README.md for what that means for the findings.
set(IHC_SANITIZE "" CACHE STRING "Sanitizers for all targets: empty, address,undefined, or thread")
set_property(CACHE IHC_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")

if(IHC_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "IHC_SANITIZE needs gcc or clang, not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  # float-cast-overflow (a double too large for the integer it is converted to) is part of
  # clang's "undefined" but not gcc's: named so that both check it, it matters for hostile input.
  if(IHC_SANITIZE STREQUAL "address,undefined" OR IHC_SANITIZE STREQUAL "undefined,address")
    set(_ihc_san_flags -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow)
  elseif(IHC_SANITIZE STREQUAL "address")
    set(_ihc_san_flags -fsanitize=address)
  elseif(IHC_SANITIZE STREQUAL "undefined")
    set(_ihc_san_flags -fsanitize=undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow)
  elseif(IHC_SANITIZE STREQUAL "thread")
    set(_ihc_san_flags -fsanitize=thread)
  else()
    message(FATAL_ERROR "IHC_SANITIZE='${IHC_SANITIZE}': use '', 'address,undefined' or 'thread'")
  endif()
  # TSan must see oneTBB's task hand-over, or every parallel region after the first reports
  # false races: libtbb has to be built with -fsanitize=thread (scripts/tsan.sh builds Debian's
  # onetbb source into build-tsan-deps/tbb; the tsan preset points TBB_DIR there).
  if(IHC_SANITIZE STREQUAL "thread" AND TARGET TBB::tbb)
    get_target_property(_ihc_tbb_configs TBB::tbb IMPORTED_CONFIGURATIONS)
    set(_ihc_tbb_libs "")
    foreach(_cfg IN LISTS _ihc_tbb_configs)
      get_target_property(_loc TBB::tbb IMPORTED_LOCATION_${_cfg})
      if(_loc)
        list(APPEND _ihc_tbb_libs "${_loc}")
      endif()
    endforeach()
    foreach(_loc IN LISTS _ihc_tbb_libs)
      file(STRINGS "${_loc}" _ihc_tsan_sym LIMIT_COUNT 1 REGEX "__tsan_func_entry")
      if(NOT _ihc_tsan_sym)
        message(FATAL_ERROR "IHC_SANITIZE=thread: ${_loc} is not built with -fsanitize=thread, so "
          "TSan cannot see oneTBB's synchronisation and reports false races. Run scripts/tsan.sh "
          "(it builds an instrumented oneTBB into build-tsan-deps/tbb), or pass "
          "-DTBB_DIR=<instrumented oneTBB>/lib/cmake/TBB.")
      endif()
    endforeach()
    message(STATUS "ThreadSanitizer: instrumented oneTBB ${_ihc_tbb_libs}")
  endif()
  message(STATUS "Sanitizers: ${_ihc_san_flags}")
  add_compile_options(${_ihc_san_flags} -fno-omit-frame-pointer)
  add_link_options(${_ihc_san_flags})
endif()

if(IHC_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "IHC_BUILD_FUZZERS needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
