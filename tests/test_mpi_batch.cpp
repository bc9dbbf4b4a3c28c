// `ihcscore batch` scaled out: --shard K/N plus --merge, and --mpi under mpirun, each giving the
// summary.csv of one single-process batch over the same input.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli_runner.hpp"
#include "ihc/cli/batch.hpp"
#include "ihc/cli/mpi_batch.hpp"
#include "ihc/engine/validation.hpp"

using ihc::test::run_cli;
using ihc::test::scratch_dir;
using ihc::test::slurp;
using ihc::test::q;
namespace fs = std::filesystem;
namespace eng = ihc::cli;  // the batch machinery, and through it the engine

namespace {


// Four small synthetic slides of different sizes (so "largest first" reorders them) and one file
// that is not a slide (an error row), made once per test process.
const fs::path& input_folder() {
  static const fs::path dir = [] {
    auto d = scratch_dir("mpi-batch-input");
    const char* sizes[] = {"--width 1200 --height 1000", "--width 2000 --height 1500", "--width 1600 --height 1200",
                           "--width 1400 --height 1400"};
    const char* mixes[] = {"0.7,0.2,0.1,0", "0.1,0.2,0.3,0.4", "0,0.1,0.2,0.7", "0.4,0.3,0.2,0.1"};
    for (int k = 0; k < 4; ++k) {
      const auto r = run_cli("synth " + q(d / ("M" + std::to_string(k + 1) + ".svs")) + " " + sizes[k] + " --seed " +
                             std::to_string(60 + k) + " --mix " + mixes[k] + " --threads 1");
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
    }
    fs::copy_file("../shared/data/bad/text-named-svs.svs", d / "M0-broken.svs");  // sorts first: input index 0
    return d;
  }();
  return dir;
}

constexpr int kSlides = 5;  // rows in every full summary
constexpr int kScorable = 4;

// summary.csv (or another CSV) without its last column (elapsed_s).
std::string without_elapsed(const fs::path& csv) {
  std::istringstream in(slurp(csv));
  std::string line, text;
  while (std::getline(in, line)) text += line.substr(0, line.rfind(',')) + "\n";
  return text;
}

// The single-process batch's summary over input_folder(), elapsed_s dropped.
const std::string& reference_summary() {
  static const std::string text = [] {
    const auto out = scratch_dir("mpi-batch-reference");
    const auto r = run_cli("batch " + q(input_folder()) + " --out " + q(out) + " --threads 1");
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 5);  // the broken file is an error row
    return without_elapsed(out / "summary.csv");
  }();
  return text;
}

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

int lines(const std::string& text) { return count(text, "\n"); }

// Runs a shell command line, capturing exit code, stdout and stderr.
ihc::test::CliResult run_shell(const std::string& command) {
  static int counter = 0;
  const auto dir = fs::temp_directory_path();
  const auto out = dir / ("ihc-mpi-out-" + std::to_string(::getpid()) + "-" + std::to_string(counter));
  const auto err = dir / ("ihc-mpi-err-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  const int status = std::system((command + " >" + q(out) + " 2>" + q(err) + " </dev/null").c_str());
  ihc::test::CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// Whether mpirun can be used here (an MPI build and mpirun on PATH); WARNs why not.
bool can_mpirun() {
  if (!eng::mpi_available()) {
    WARN("ihcscore was built without MPI: skipping the mpirun test");
    return false;
  }
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN("mpirun is not on PATH: skipping the mpirun test");
    return false;
  }
  return true;
}

// `mpirun -np 3 ihcscore batch INPUT --mpi --out OUT --threads 1`; 3 ranks on a 2-core machine too.
ihc::test::CliResult mpirun_batch(const fs::path& out, int ranks = 3) {
  return run_shell("mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) + " " + q(IHC_BINARY) +
                   " batch " + q(input_folder()) + " --mpi --out " + q(out) + " --threads 1");
}

}  // namespace

TEST_CASE("batch shards 1/3 2/3 3/3 merged give the single-process summary", "[batch][scale-out]") {
  const auto& reference = reference_summary();
  REQUIRE(lines(reference) == kSlides + 1);
  const auto base = scratch_dir("mpi-batch-shards");
  const auto a = base / "a", b = base / "b", merged = base / "merged";
  // Shards 1 and 2 share a folder, shard 3 has its own: the merge reads both.
  for (int k = 1; k <= 3; ++k) {
    const auto dir = k < 3 ? a : b;
    const auto r = run_cli("batch " + q(input_folder()) + " --shard " + std::to_string(k) + "/3 --out " + q(dir) +
                           " --threads 1");
    INFO(r.out << r.err);
    CHECK(r.exit_code == (k == 1 ? 5 : 0));  // input index 0 (the broken file) is shard 1's
    const auto shard = dir / ("summary-" + std::to_string(k) + "-of-3.csv");
    REQUIRE(fs::exists(shard));
    CHECK(slurp(shard).rfind(std::string("input_index,input_count,") + eng::kSummaryHeader, 0) == 0);
    CHECK(lines(slurp(shard)) == 1 + (k == 1 ? 2 : k == 2 ? 2 : 1));  // indices 0,3 / 1,4 / 2
    CHECK_FALSE(fs::exists(dir / "summary.csv"));
  }
  // A shard submitted again resumes: its own summary is not a file of the user's.
  const auto again = run_cli("batch " + q(input_folder()) + " --shard 3/3 --out " + q(b) + " --threads 1");
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("already done") != std::string::npos);

  // Shard 3 missing: the merge says so.
  const auto partial = run_cli("batch --merge " + q(a) + " --out " + q(merged));
  CHECK(partial.exit_code == 3);
  CHECK(partial.err.find("shard 3/3") != std::string::npos);
  CHECK(count(partial.err, "\n") == 1);

  const auto m = run_cli("batch --merge " + q(a) + " " + q(b) + " --out " + q(merged));
  INFO(m.out << m.err);
  CHECK(m.exit_code == 5);  // one error row, as the single-process batch
  CHECK(without_elapsed(merged / "summary.csv") == reference);
  CHECK(fs::exists(merged / "M3.json"));  // reports copied from the shard folders
  CHECK(fs::exists(merged / "M1.json"));

  // Merging in place, into the shards' own folder.
  fs::copy_file(b / "summary-3-of-3.csv", a / "summary-3-of-3.csv");
  fs::copy_file(b / "M2.json", a / "M2.json");
  const auto in_place = run_cli("batch --merge " + q(a) + " --out " + q(a));
  CHECK(in_place.exit_code == 5);
  CHECK(without_elapsed(a / "summary.csv") == reference);

  // Shard summaries from a version without the borderline and warnings columns still merge: the
  // two are left empty, every other column as before.
  const auto old = base / "old";
  fs::create_directories(old);
  for (const auto& from : {a, b})
    for (const auto& e : fs::directory_iterator(from))
      if (e.path().extension() == ".json") fs::copy_file(e.path(), old / e.path().filename(), fs::copy_options::skip_existing);
  for (const auto& [from, k] : std::vector<std::pair<fs::path, int>>{{a, 1}, {a, 2}, {b, 3}}) {
    const auto name = "summary-" + std::to_string(k) + "-of-3.csv";
    const auto table = ihc::engine::read_csv(from / name);
    std::ofstream out(old / name);
    const auto keep = [&](std::size_t col) { return table.header[col] != "borderline" && table.header[col] != "warnings"; };
    const auto write_row = [&](const std::vector<std::string>& row) {
      std::string line;
      for (std::size_t col = 0; col < row.size(); ++col)
        if (keep(col)) line += (line.empty() ? "" : ",") + ihc::engine::csv_field(row[col]);
      out << line << "\n";
    };
    write_row(table.header);
    for (const auto& row : table.rows) write_row(row);
  }
  const auto from_old = run_cli("batch --merge " + q(old) + " --out " + q(base / "merged-old"));
  INFO(from_old.err);
  CHECK(from_old.exit_code == 5);
  const auto merged_old = ihc::engine::read_csv(base / "merged-old" / "summary.csv");
  const auto fresh = ihc::engine::read_csv(merged / "summary.csv");
  REQUIRE(merged_old.rows.size() == fresh.rows.size());
  const auto col = [](const ihc::engine::CsvTable& t, const char* name) { return *t.column(name); };
  for (std::size_t r = 0; r < fresh.rows.size(); ++r) {
    CHECK(merged_old.rows[r][col(merged_old, "borderline")].empty());
    CHECK(merged_old.rows[r][col(merged_old, "score")] == fresh.rows[r][col(fresh, "score")]);
  }
}

TEST_CASE("batch shard and merge usage errors", "[batch][scale-out]") {
  const auto dir = scratch_dir("mpi-batch-usage");
  for (const char* bad : {"0/4", "5/4", "abc", "1/0", "2/", "/4", "-1/4", "1/4/2", "1.5/4", "4", "''"}) {
    const auto r = run_cli("batch " + q(dir) + " --shard " + bad + " --out " + q(dir / "out"));
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--shard") != std::string::npos);
    CHECK(count(r.err, "\n") == 1);
  }
  CHECK(run_cli("batch " + q(dir) + " --merge " + q(dir) + " --out " + q(dir)).exit_code == 2);
  CHECK(run_cli("batch --merge " + q(dir) + " --shard 1/2 --out " + q(dir)).exit_code == 2);
  CHECK(run_cli("batch --out " + q(dir)).exit_code == 2);  // neither INPUT nor --merge
  const auto none = run_cli("batch --merge " + q(dir) + " --out " + q(dir));
  CHECK(none.exit_code == 3);  // no shard summaries there
  CHECK(none.err.find("summary-K-of-N.csv") != std::string::npos);
  CHECK(eng::parse_shard("2/4").k == 2);
  CHECK(eng::parse_shard("2/4").n == 4);
  CHECK(eng::Shard{2, 4}.takes(1));
  CHECK(eng::Shard{2, 4}.takes(5));
  CHECK_FALSE(eng::Shard{2, 4}.takes(2));
  if (!eng::mpi_available()) {
    const auto r = run_cli("batch " + q(dir) + " --mpi --out " + q(dir / "out"));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("built without MPI") != std::string::npos);
  }
}

TEST_CASE("batch --mpi under mpirun -np 3 gives the single-process summary", "[batch][scale-out][mpi]") {
  if (!can_mpirun()) return;
  const auto& reference = reference_summary();
  const auto out = scratch_dir("mpi-batch-mpirun") / "out";
  const auto r = mpirun_batch(out);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 5);  // the broken file's error row, as single-process
  CHECK(without_elapsed(out / "summary.csv") == reference);
  CHECK(count(r.out, "batch: 5 slides: 4 scored, 0 already done, 1 failed") == 1);  // rank 0 alone prints it
  for (int k = 1; k <= kScorable; ++k) CHECK(fs::exists(out / ("M" + std::to_string(k) + ".json")));
}

TEST_CASE("batch --mpi run again after it finished skips every slide", "[batch][scale-out][mpi]") {
  if (!can_mpirun()) return;
  const auto out = scratch_dir("mpi-batch-resume") / "out";
  const auto first = mpirun_batch(out, 2);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 5);
  CHECK(count(first.err, "skipped (done)") == 0);
  const std::string full = without_elapsed(out / "summary.csv");
  CHECK(lines(full) == kSlides + 1);

  const auto again = mpirun_batch(out, 3);
  INFO(again.out << again.err);
  CHECK(again.exit_code == 5);
  CHECK(count(again.err, "skipped (done)") == kScorable);
  CHECK(count(again.out, "4 already done") == 1);
  CHECK(without_elapsed(out / "summary.csv") == full);
}
