# Warnings are PRIVATE to each target so they never leak to consumers.
function(ihc_enable_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
      -Wno-sign-conversion -Wno-deprecated-enum-enum-conversion)
  endif()
endfunction()

# Adds a module library ihc_<name> with alias ihc::<name> from <name>/src/*.cpp.
function(ihc_add_module name)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  add_library(ihc_${name} STATIC ${sources})
  add_library(ihc::${name} ALIAS ihc_${name})
  target_include_directories(ihc_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_compile_features(ihc_${name} PUBLIC cxx_std_20)
  ihc_enable_warnings(ihc_${name})
endfunction()
