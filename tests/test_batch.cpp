// `ihcscore batch`: folders and manifests, summary.csv, failures, resume and interruption.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli_runner.hpp"
#include "ihc/cli/batch.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/engine/validation.hpp"


using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
using ihc::test::q;
using ihc::test::spawn_cli;
namespace fs = std::filesystem;
namespace eng = ihc::cli;  // the batch machinery, and through it the engine

namespace {

const fs::path kData = "../shared/data";


// Small synthetic slides, made once per test run and copied where needed.
const fs::path& synth_cache() {
  static const fs::path dir = [] {
    auto d = scratch_dir("batch-synth-cache");
    const char* mixes[] = {"0.7,0.2,0.1,0", "0.1,0.2,0.3,0.4", "0.2,0.5,0.2,0.1", "0,0.1,0.2,0.7",
                           "0.4,0.3,0.2,0.1", "0.1,0.1,0.1,0.7"};
    for (int k = 0; k < 6; ++k) {
      const auto slide = d / ("S" + std::to_string(k + 1) + ".svs");
      const auto r = run_cli("synth " + q(slide) + " --width 2000 --height 1600 --seed " + std::to_string(30 + k) +
                             " --mix " + mixes[k]);
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
    }
    return d;
  }();
  return dir;
}

// A folder with the first `n` synthetic slides (and their .truth.json files, which are not slides).
fs::path slide_folder(const std::string& name, int n) {
  const auto dir = scratch_dir(name);
  for (int k = 1; k <= n; ++k) {
    const std::string s = "S" + std::to_string(k) + ".svs";
    fs::copy_file(synth_cache() / s, dir / s);
    fs::copy_file(synth_cache() / (s + ".truth.json"), dir / (s + ".truth.json"));
  }
  return dir;
}

eng::CsvTable summary(const fs::path& out) { return eng::read_csv(out / "summary.csv"); }

std::string cell(const eng::CsvTable& t, std::size_t row, const char* col) { return t.rows.at(row).at(t.require_column(col)); }

// summary.csv without the elapsed_s column.
std::string without_elapsed(const fs::path& out) {
  std::istringstream in(slurp(out / "summary.csv"));
  std::string line, text;
  while (std::getline(in, line)) text += line.substr(0, line.rfind(',')) + "\n";
  return text;
}

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("batch helpers: ids, hash, CSV fields", "[batch]") {
  CHECK(eng::unique_ids({"S1", "S2", "S1", "S1", "a/b", "summary"}) ==
        std::vector<std::string>{"S1", "S2", "S1-2", "S1-3", "a_b", "summary_"});
  CHECK(eng::unique_ids({"S1-2", "S1", "S1"}) == std::vector<std::string>{"S1-2", "S1", "S1-3"});
  CHECK(eng::fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(eng::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(eng::csv_field("plain") == "plain");
  CHECK(eng::csv_field("a, \"b\"\nc") == "\"a, \"\"b\"\" c\"");
  CHECK(eng::has_slide_extension("x/S1.SVS"));
  CHECK_FALSE(eng::has_slide_extension("notes.txt"));

  eng::ScoringSettings cli;
  eng::BatchItem item;
  item.path = "../shared/data/images/her2-score3.png";
  const auto h = eng::settings_hash(cli, item);
  CHECK(h.size() == 16);
  CHECK(eng::settings_hash(cli, item) == h);
  auto cli2 = cli;
  cli2.guideline = "asco-cap-2007";
  CHECK(eng::settings_hash(cli2, item) != h);
  auto cli3 = cli;
  cli3.threads = 7;  // never changes the result
  CHECK(eng::settings_hash(cli3, item) == h);
  auto item2 = item;
  item2.mpp = 0.6;
  CHECK(eng::settings_hash(cli, item2) != h);
}

TEST_CASE("batch over a folder: one broken slide is an error row, the rest match score", "[batch]") {
  const auto dir = slide_folder("batch-folder", 3);
  fs::copy_file(kData / "bad" / "text-named-svs.svs", dir / "broken.svs");     // not a slide at all
  fs::copy_file(kData / "bad" / "corrupt-tile.svs", dir / "corrupt-tile.svs");  // opens, then fails to read
  { std::ofstream(dir / "notes.txt") << "not a slide\n"; }
  const auto out = dir.parent_path() / "ihcscore-test-batch-folder-out";
  fs::remove_all(out);

  const auto r = run_cli("batch " + q(dir) + " --out " + q(out) + " --threads 2");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 5);
  CHECK(slurp(out / "summary.csv").rfind(std::string(eng::kSummaryHeader) + "\n", 0) == 0);  // the whole first line
  const auto t = summary(out);
  REQUIRE(t.rows.size() == 5);  // S1, S2, S3, broken, corrupt-tile: by name (bytes); notes.txt, *.truth.json skipped
  CHECK(cell(t, 3, "slide") == "broken");
  CHECK(cell(t, 3, "status") == "error");
  CHECK(cell(t, 3, "error").find("broken.svs") != std::string::npos);
  CHECK_FALSE(fs::exists(out / "broken.json"));
  CHECK(count(r.err, "[4/5] broken: error: ") == 1);
  CHECK(count(r.err, "[1/5] S1: ") == 1);
  CHECK(cell(t, 4, "slide") == "corrupt-tile");
  CHECK(cell(t, 4, "status") == "error");
  CHECK(cell(t, 4, "error").find("corrupt-tile.svs") != std::string::npos);
  CHECK(cell(t, 4, "score").empty());

  for (std::size_t k = 0; k < 3; ++k) {
    const std::string id = "S" + std::to_string(k + 1);
    CHECK(cell(t, k, "slide") == id);
    CHECK(cell(t, k, "status") == "ok");
    CHECK(cell(t, k, "error").empty());
    const auto batch_report = nlohmann::json::parse(slurp(out / (id + ".json")));
    CHECK(batch_report["slide_id"] == id);
    CHECK(batch_report["settings_hash"].get<std::string>().size() == 16);
    const auto single = out / (id + ".single.json");
    const auto s = run_cli("score " + q(dir / (id + ".svs")) + " --threads 2 --json " + q(single));
    REQUIRE(s.exit_code == 0);
    const auto j = nlohmann::json::parse(slurp(single));
    CHECK(cell(t, k, "score") == j["score"].get<std::string>());
    CHECK(cell(t, k, "category") == j["category"].get<std::string>());
    CHECK(std::stod(cell(t, k, "percent_complete")) == Approx(j["percent"]["complete"].get<double>()));
    CHECK(std::stod(cell(t, k, "percent_complete_intense")) == Approx(j["percent"]["complete_intense"].get<double>()));
    CHECK(std::stoll(cell(t, k, "cells")) == j["cells"]["total"].get<long long>());
    CHECK(cell(t, k, "borderline") == (j["decisive"]["borderline"].get<bool>() ? "true" : "false"));
    CHECK(std::stoul(cell(t, k, "warnings")) == (j.contains("warnings") ? j["warnings"].size() : 0));
    CHECK(batch_report["percent"] == j["percent"]);
  }
}

TEST_CASE("batch over a manifest: id and mpp columns, relative paths, per-row errors", "[batch]") {
  const auto dir = scratch_dir("batch-manifest");
  fs::copy_file(kData / "images" / "her2-score3.png", dir / "her2-score3.png");
  const auto manifest = dir / "slides.csv";
  const cv::Mat img = cv::imread((dir / "her2-score3.png").string());
  REQUIRE_FALSE(img.empty());
  {
    // Region of interest: the left half of the image, as QuPath exports an annotation.
    std::ofstream g(dir / "left.geojson");
    g << R"({"type":"FeatureCollection","features":[{"type":"Feature","properties":{"objectType":"annotation"},)"
      << R"("geometry":{"type":"Polygon","coordinates":[[[0,0],[)" << img.cols / 2 << ",0],[" << img.cols / 2 << ","
      << img.rows << "],[0," << img.rows << "],[0,0]]]}}]}";
  }
  {
    std::ofstream f(manifest);
    f << "id,path,mpp,roi\n";
    f << "P3,her2-score3.png,0.6,\n";                 // relative to the manifest's folder
    f << ",her2-score3.png,0.6,left.geojson\n";       // id from the stem; ROI relative to the manifest
    f << ",her2-score3.png,0.6,\n";                   // same stem again: her2-score3-2
    f << "nompp,her2-score3.png,,\n";                 // a plain image without a resolution
    f << "gone,missing.svs,,\n";
  }
  const auto out = dir / "out";
  const auto r = run_cli("batch " + q(manifest) + " --out " + q(out) + " --threads 2");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 5);
  const auto t = summary(out);
  REQUIRE(t.rows.size() == 5);
  CHECK(cell(t, 0, "slide") == "P3");
  CHECK(cell(t, 1, "slide") == "her2-score3");
  CHECK(cell(t, 2, "slide") == "her2-score3-2");
  // The renaming is said, naming the id it could not have.
  CHECK(r.err.find("id 'her2-score3' is taken by an earlier slide; reported as 'her2-score3-2'") != std::string::npos);
  CHECK(cell(t, 3, "slide") == "nompp");
  CHECK(cell(t, 4, "slide") == "gone");
  // The whole patch carries the 3+ label; the left half (row 1, its region of interest) is
  // checked below by its cells, as a label says nothing of half a field.
  for (std::size_t k = 0; k < 3; ++k) CHECK(cell(t, k, "status") == "ok");
  CHECK(cell(t, 0, "score") == "3+");
  CHECK(cell(t, 2, "score") == "3+");
  CHECK(cell(t, 3, "status") == "error");
  CHECK(cell(t, 3, "error").find("resolution") != std::string::npos);
  CHECK(cell(t, 4, "status") == "error");
  CHECK(cell(t, 4, "error").find("missing.svs") != std::string::npos);
  const auto p3 = nlohmann::json::parse(slurp(out / "P3.json"));
  CHECK(p3["slide"]["mpp"].get<double>() == Approx(0.6));
  const auto with_roi = nlohmann::json::parse(slurp(out / "her2-score3.json"));
  CHECK(with_roi["roi"]["file"].get<std::string>().find("left.geojson") != std::string::npos);
  CHECK(with_roi["roi"]["polygons"] == 1);
  // Half the image: clearly fewer cells than the whole, and some.
  CHECK(with_roi["cells"]["total"].get<int>() < p3["cells"]["total"].get<int>() * 0.75);
  CHECK(with_roi["cells"]["total"].get<int>() > p3["cells"]["total"].get<int>() * 0.25);
}

TEST_CASE("batch input and output errors: exit 3 and 4", "[batch]") {
  const auto dir = scratch_dir("batch-errors");
  CHECK(run_cli("batch " + q(dir / "nope") + " --out " + q(dir / "o1")).exit_code == 3);
  { std::ofstream(dir / "bad.csv") << "slide_path,mpp\nS1.svs,0.5\n"; }
  const auto nopath = run_cli("batch " + q(dir / "bad.csv") + " --out " + q(dir / "o2"));
  CHECK(nopath.exit_code == 3);
  CHECK(nopath.err.find("path") != std::string::npos);
  // A labels CSV's "file" column lists the slides as well as "path" does.
  { std::ofstream(dir / "labels.csv") << "file,ihc_score\n" << fs::absolute(kData / "images" / "her2-score0.png").string() << ",0\n"; }
  CHECK(run_cli("batch " + q(dir / "labels.csv") + " --mpp 0.6 --out " + q(dir / "o3")).exit_code == 0);
  CHECK(fs::is_regular_file(dir / "o3" / "her2-score0.json"));
  // An id the manifest gives twice is a mistake in it, not a slide to rename: exit 3, both lines named.
  {
    std::ofstream(dir / "twice.csv") << "id,path,mpp\nS1," << fs::absolute(kData / "images" / "her2-score0.png").string()
                                     << ",0.6\nS2,a.png,0.6\nS1,b.png,0.6\n";
  }
  const auto twice = run_cli("batch " + q(dir / "twice.csv") + " --out " + q(dir / "o4"));
  CHECK(twice.exit_code == 3);
  CHECK(twice.err.find("line 4: id 'S1' is already on line 2") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o4"));
  { std::ofstream(dir / "file") << "x"; }
  { std::ofstream(dir / "ok.csv") << "path,mpp\n" << fs::absolute(kData / "images" / "her2-score0.png").string() << ",0.6\n"; }
  CHECK(run_cli("batch " + q(dir / "ok.csv") + " --out " + q(dir / "file" / "sub")).exit_code == 4);
  CHECK(run_cli("batch " + q(dir / "ok.csv")).exit_code == 2);  // --out is required
}

TEST_CASE("batch resumes: done slides are skipped, deleted or re-set ones are scored", "[batch]") {
  const auto dir = slide_folder("batch-resume", 3);
  const auto out = dir / "out";  // a sub-folder: not a file of the batch
  const std::string cmd = "batch " + q(dir) + " --out " + q(out) + " --threads 2";
  const auto first = run_cli(cmd);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(count(first.err, "skipped (done)") == 0);
  const std::string full = slurp(out / "summary.csv");

  const auto again = run_cli(cmd);
  CHECK(again.exit_code == 0);
  CHECK(count(again.err, "skipped (done)") == 3);
  CHECK(slurp(out / "summary.csv") == full);  // rows of skipped slides come from their reports

  fs::remove(out / "S2.json");
  const auto resumed = run_cli(cmd);
  CHECK(resumed.exit_code == 0);
  CHECK(count(resumed.err, "skipped (done)") == 2);
  CHECK(count(resumed.err, "S2: skipped") == 0);
  CHECK(without_elapsed(out) == [&] {
    std::istringstream in(full);
    std::string line, text;
    while (std::getline(in, line)) text += line.substr(0, line.rfind(',')) + "\n";
    return text;
  }());

  const auto other = run_cli(cmd + " --guideline asco-cap-2007");
  CHECK(other.exit_code == 0);
  CHECK(count(other.err, "skipped (done)") == 0);
  CHECK(nlohmann::json::parse(slurp(out / "S1.json"))["guideline"] == "asco-cap-2007");

  const auto forced = run_cli(cmd + " --guideline asco-cap-2007 --force");
  CHECK(forced.exit_code == 0);
  CHECK(count(forced.err, "skipped (done)") == 0);
}

TEST_CASE("an interrupted batch leaves a valid summary and resumes to the uninterrupted result", "[batch]") {
  // 18 slides (three copies of six), so the batch is still running when it is interrupted.
  const auto dir = slide_folder("batch-interrupt", 6);
  for (int k = 1; k <= 6; ++k)
    for (const char* copy : {"b", "c"})
      fs::copy_file(dir / ("S" + std::to_string(k) + ".svs"), dir / ("S" + std::to_string(k) + copy + ".svs"));
  const auto reference = dir.parent_path() / "ihcscore-test-batch-interrupt-ref";
  fs::remove_all(reference);
  const auto out = dir.parent_path() / "ihcscore-test-batch-interrupt-out";
  fs::remove_all(out);
  const std::vector<std::string> args{"batch", dir.string(), "--threads", "1", "--analysis-mpp", "0.25", "--out"};
  auto shell = [&](const fs::path& o) {
    std::string s;
    for (const auto& a : args) s += q(a) + " ";
    return s + q(o);
  };

  const auto ref = run_cli(shell(reference));
  REQUIRE(ref.exit_code == 0);

  // Start the batch, wait until it has finished two slides, then Ctrl-C it.
  const auto log = dir.parent_path() / "ihcscore-test-batch-interrupt.log";
  std::vector<std::string> spawn_args = args;
  spawn_args.push_back(out.string());
  const pid_t pid = spawn_cli(spawn_args, log);
  int status = 0;
  bool exited = false;
  for (int waited = 0; waited < 120000; waited += 10) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::error_code ec;
    if (fs::exists(out / "summary.csv", ec) && count(slurp(out / "summary.csv"), "\n") >= 3) break;  // header + 2
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_FALSE(exited);
  ::kill(pid, SIGINT);
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO(slurp(log));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  const auto partial = summary(out);  // parses: header and whole rows
  CHECK(partial.rows.size() >= 2);
  CHECK(partial.rows.size() < 18);
  for (std::size_t k = 0; k < partial.rows.size(); ++k) {
    CHECK(cell(partial, k, "status") == "ok");
    CHECK(fs::exists(out / (cell(partial, k, "slide") + ".json")));
  }
  int reports = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    CHECK(e.path().filename().string().rfind(".ihcscore-", 0) != 0);
    reports += e.path().extension() == ".json";
  }
  CHECK(reports == static_cast<int>(partial.rows.size()));  // the abandoned slide left no report

  const auto rerun = run_cli(shell(out));
  INFO(rerun.err);
  CHECK(rerun.exit_code == 0);
  CHECK(count(rerun.err, "skipped (done)") == static_cast<int>(partial.rows.size()));
  CHECK(without_elapsed(out) == without_elapsed(reference));
}

TEST_CASE("a slide that crashes the process scoring it fails alone: the batch records it and goes on", "[batch]") {
  const auto dir = slide_folder("batch-crash", 3);
  const auto out = dir.parent_path() / "ihcscore-test-batch-crash-out";
  fs::remove_all(out);
  const auto log = dir.parent_path() / "ihcscore-test-batch-crash.log";
  const pid_t pid = spawn_cli({"batch", dir.string(), "--threads", "1", "--analysis-mpp", "0.25", "--out", out.string()}, log);
  // Each slide is scored in a child process: wait for the first one, then kill it as the
  // out-of-memory killer would (SIGKILL: no handler, no clean-up; a SIGSEGV would be caught and
  // turned into exit status 1 by a sanitizer build's own handler).
  const fs::path children = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
  std::string child;
  for (int waited = 0; waited < 30000 && child.empty(); waited += 5) {
    std::ifstream f(children);
    std::getline(f, child);
    while (!child.empty() && child.back() == ' ') child.pop_back();
    if (child.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE_FALSE(child.empty());
  ::kill(static_cast<pid_t>(std::stoi(child)), SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO(slurp(log));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 5);  // partial: one slide failed
  const auto s = summary(out);
  REQUIRE(s.rows.size() == 3);
  int failed = 0;
  for (std::size_t k = 0; k < s.rows.size(); ++k) {
    if (cell(s, k, "status") == "ok") continue;
    ++failed;
    CHECK(cell(s, k, "error").find("crashed the process scoring it (signal 9") != std::string::npos);
  }
  CHECK(failed == 1);
  // The crash was not the slide's fault: run again, it is scored and the rest are kept.
  const auto again = run_cli("batch " + q(dir) + " --threads 1 --analysis-mpp 0.25 --out " + q(out));
  CHECK(again.exit_code == 0);
  CHECK(count(again.err, "skipped (done)") == 2);
}
