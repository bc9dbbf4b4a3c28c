// Regressions found by the libFuzzer harnesses of tests/fuzz (and the sanitizer builds): each
// input that once crashed or misbehaved, reduced to what matters. The inputs themselves are also
// in tests/fuzz/corpus/<harness>/ so that the harnesses replay them.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ihc/engine/config.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/roi.hpp"

namespace eng = ihc::engine;

TEST_CASE("fuzz regression: deeply nested GeoJSON is refused, not a stack overflow", "[fuzz-regression][roi]") {
  // parse_roi walked arrays and collections recursively without a bound: 100 000 nested arrays
  // (200 KB) overflowed the stack (SIGSEGV in collect()).
  for (const std::size_t depth : {std::size_t{100}, std::size_t{100000}}) {
    const std::string brackets = std::string(depth, '[') + std::string(depth, ']');
    std::string collections;
    for (std::size_t i = 0; i < depth; ++i) collections += R"({"type":"GeometryCollection","geometries":[)";
    for (std::size_t i = 0; i < depth; ++i) collections += "]}";
    for (const std::string* text : {&brackets, static_cast<const std::string*>(&collections)}) {
      INFO("depth " << depth);
      try {
        (void)eng::parse_roi(*text, "deep.geojson");
        FAIL("accepted");
      } catch (const eng::EngineError& e) {
        CHECK(e.kind() == eng::ErrorKind::input);
        CHECK_THAT(e.what(), Catch::Contains("nested more than"));
      }
    }
  }
  // Real QuPath nesting (FeatureCollection > Feature > GeometryCollection > MultiPolygon) is fine.
  const auto region = eng::parse_roi(
      R"({"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"GeometryCollection",
          "geometries":[{"type":"MultiPolygon","coordinates":[[[[0,0],[10,0],[10,10],[0,0]]]]}]}}]})",
      "qupath.geojson");
  CHECK(region.polygons().size() == 1);
}

TEST_CASE("fuzz regression: a GeoJSON number beyond a double is an input error, not an internal one",
          "[fuzz-regression][roi]") {
  // nlohmann::json throws out_of_range (406), not parse_error, for 1e400: parse_roi let it escape
  // (an uncaught exception in the harness; `score --roi` reported an internal error, exit 1).
  for (const char* text : {R"({"type":"Polygon","coordinates":[[[-1e3080,0],[1,0],[1,1]]]})",
                           R"({"type":"Polygon","coordinates":[[[0,0],[1e400,0],[1,1]]]})"}) {
    INFO(text);
    try {
      (void)eng::parse_roi(text, "overflow.geojson");
      FAIL("accepted");
    } catch (const eng::EngineError& e) {
      CHECK(e.kind() == eng::ErrorKind::input);
      CHECK_THAT(e.what(), Catch::Contains("overflow.geojson: not valid GeoJSON"));
    }
  }
}

TEST_CASE("fuzz regression: a --config number beyond a double is an input error, huge counts are refused",
          "[fuzz-regression][config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("ihc-fuzz-regression-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "config.json";
  const auto write = [&file](const std::string& text) { std::ofstream(file, std::ios::binary) << text; };
  // Same out_of_range escape as parse_roi's, in apply_config_file.
  write(R"({"rules": {"noise_floor_percent": 1e400}})");
  eng::ScoreOptions o;
  try {
    eng::apply_config_file(file, o);
    FAIL("accepted");
  } catch (const eng::EngineError& e) {
    CHECK(e.kind() == eng::ErrorKind::input);
    CHECK_THAT(e.what(), Catch::Contains("not valid JSON"));
  }
  // 1e30 neighbours or rays: a double to int conversion out of range (undefined behaviour, seen
  // by -fsanitize=float-cast-overflow) before; now refused by the parameters' ranges.
  write(R"({"cells": {"min_neighbours": 1e30, "rays": 1e30}})");
  eng::ScoreOptions big;
  try {
    eng::apply_config_file(file, big);
    FAIL("accepted");
  } catch (const eng::EngineError& e) {
    CHECK(e.kind() == eng::ErrorKind::input);
    CHECK_THAT(e.what(), Catch::Contains("must be between"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("fuzz regression: a GeoJSON point far outside any slide is refused", "[fuzz-regression][roi]") {
  // A point at y = -1e9 (or 1.5e16, which the mask's int conversion wrapped) made Region::mask's
  // cv::fillPoly run for 17 s and more (a libFuzzer timeout); level-0 coordinates beyond 10^7
  // are now an input error.
  for (const char* y : {"-1e9", "1.5e16", "-10000001"}) {
    const std::string text = std::string(R"({"type":"Polygon","coordinates":[[[10,10],[300,12],[150,)") + y + "]]]}";
    INFO(text);
    try {
      (void)eng::parse_roi(text, "far.geojson");
      FAIL("accepted");
    } catch (const eng::EngineError& e) {
      CHECK(e.kind() == eng::ErrorKind::input);
      CHECK_THAT(e.what(), Catch::Contains("beyond 10^7 pixels"));
    }
  }
  CHECK(eng::parse_roi(R"({"type":"Polygon","coordinates":[[[-50,-50],[9999999,0],[0,9999999]]]})", "ok.geojson")
            .polygons()
            .size() == 1);
}
