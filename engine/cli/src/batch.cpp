#include "ihc/cli/batch.hpp"
#include "ihc/engine/report_folder.hpp"
#include "ihc/engine/text.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <system_error>

#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/cli/progress.hpp"
#include "ihc/engine/roi.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/validation.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::cli {
namespace fs = std::filesystem;

namespace {

std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Size and modification time of a file, "missing" when it cannot be stat'ed.
std::string file_stamp(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec) return "missing";
  const auto mtime = fs::last_write_time(p, ec);
  if (ec) return "missing";
  return std::to_string(size) + ":" +
         std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count());
}

struct Interrupted {};

}  // namespace

std::string settings_canonical(const ScoringSettings& cli, const BatchItem& item) {
  const ScoreOptions o = make_score_options(cli);
  std::ostringstream s;
  s << "ihcscore-batch-settings/1\n";
  s << "version=" << version_string() << "\n";
  s << "analysis_mpp=" << fmt_double(o.analysis_mpp) << "\n";
  s << "guideline=" << cli.guideline << "\n";
  if (cli.specimen != "resection") s << "specimen=" << cli.specimen << "\n";
  s << "decode=" << cli.decode << "\n";
  s << "stain_vectors=" << o.stains.to_string() << "\n";
  s << "stains=" << cli.stains << "\n";
  if (cli.stains != "default" && cli.stains != "estimate") s << "stains_file=" << file_stamp(cli.stains) << "\n";
  s << "cli_mpp=" << (cli.mpp ? fmt_double(*cli.mpp) : std::string("none")) << "\n";
  s << "slide_mpp=" << (item.mpp ? fmt_double(*item.mpp) : std::string("none")) << "\n";
  s << "roi=" << item.roi << "\n";
  if (!item.roi.empty()) s << "roi_file=" << file_stamp(item.roi) << "\n";
  s << "config=" << o.config_hash << "\n";
  if (!cli.roi.empty()) s << "cli_roi=" << cli.roi << " " << file_stamp(cli.roi) << "\n";
  std::error_code ec;
  const fs::path abs = item.path.empty() ? item.path : fs::absolute(item.path, ec);
  s << "file=" << abs.lexically_normal().string() << "\n";
  s << "file_stamp=" << file_stamp(item.path) << "\n";
  return s.str();
}

std::string settings_hash(const ScoringSettings& cli, const BatchItem& item) {
  return content_hash(settings_canonical(cli, item));
}

std::string summary_csv(const std::vector<SummaryRow>& rows) {
  std::string out;
  for (const auto& [name, field] : kSummaryColumns) (out += out.empty() ? "" : ",") += name;
  out += "\n";
  for (const auto& r : rows) {
    const char* sep = "";
    for (const auto& [name, field] : kSummaryColumns) {
      out += sep;
      out += csv_field(r.*field);
      sep = ",";
    }
    out += "\n";
  }
  return out;
}

SummaryRow summary_row_from_report(const std::string& id, const nlohmann::json& report) {
  SummaryRow row;
  row.slide = id;
  row.status = "ok";
  row.score = report.value("score", "");
  row.category = report.value("category", "");
  row.guideline = report.value("guideline", "");
  if (report.contains("specimen") && report["specimen"] == "biopsy") row.guideline += " biopsy";
  if (report.contains("decisive")) {
    row.decisive_metric = report["decisive"].value("metric", "");
    if (report["decisive"].contains("percent")) row.decisive_percent = report["decisive"]["percent"].dump();
    if (report["decisive"].contains("borderline")) row.borderline = report["decisive"]["borderline"].dump();
  }
  const bool warned = report.contains("warnings") && report["warnings"].is_array();
  row.warnings = std::to_string(warned ? report["warnings"].size() : 0);
  if (report.contains("percent")) {
    const auto& p = report["percent"];
    if (p.contains("complete")) row.percent_complete = p["complete"].dump();
    if (p.contains("complete_intense")) row.percent_complete_intense = p["complete_intense"].dump();
  }
  if (report.contains("cells") && report["cells"].contains("total")) row.cells = report["cells"]["total"].dump();
  if (report.contains("elapsed_s")) row.elapsed_s = report["elapsed_s"].dump();
  return row;
}

namespace {

// The report of an earlier run, when it is complete and was made with `hash`.
std::optional<nlohmann::json> done_report(const fs::path& file, const std::string& hash) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  std::ifstream f(file, std::ios::binary);
  if (!f) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(f);
    if (!j.is_object() || j.value("settings_hash", "") != hash || !j.contains("score")) return std::nullopt;
    return j;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const auto bad = [&] {
    return EngineError(ErrorKind::usage, "--shard: expected K/N, part K of N parts with 1 <= K <= N (e.g. 2/4), got '" +
                                        text + "'");
  };
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw bad();
  const auto number = [&](std::string_view digits) -> long long {
    if (digits.empty() || digits.size() > 9) throw bad();
    long long v = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') throw bad();
      v = v * 10 + (c - '0');
    }
    return v;
  };
  const long long k = number(std::string_view(text).substr(0, slash));
  const long long n = number(std::string_view(text).substr(slash + 1));
  if (n < 1 || k < 1 || k > n) throw bad();
  return Shard{static_cast<int>(k), static_cast<int>(n)};
}

namespace {

// Files batch writes into --out and --report and may replace on a later run: its own earlier
// outputs only. A file of the user's under the same name is replaced only with --force; a slide's
// report folder holding anything a report does not write is never replaced (ReportFolder).
// The columns a shard's summary has in front of the summary's own.
constexpr std::string_view kShardColumns = "input_index,input_count,";
// A summary (or a shard's) batch wrote: its header, after the shard columns, starts with the
// summary's first columns (an older version wrote fewer columns after them).
bool batch_summary_file(const fs::path& file) {
  std::ifstream f(file, std::ios::binary);
  std::string line;
  if (!f || !std::getline(f, line)) return false;
  if (line.rfind(kShardColumns, 0) == 0) line.erase(0, kShardColumns.size());
  return line.rfind(std::string(kSummaryColumns[0].first) + "," + kSummaryColumns[1].first + ",", 0) == 0;
}
bool contains_text(const fs::path& file, std::string_view text) {
  std::ifstream f(file, std::ios::binary);
  std::string head(4096, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(f.gcount()));
  return head.find(text) != std::string::npos;
}
bool batch_report_json(const fs::path& file) {
  std::ifstream f(file, std::ios::binary);
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    return j.is_object() && j.contains("settings_hash") && j.contains("slide_id");
  } catch (const std::exception&) {
    return false;
  }
}
void check_replaceable(const fs::path& file, bool ours, bool force) {
  std::error_code ec;
  if (force || !fs::exists(fs::symlink_status(file, ec)) || ours) return;
  throw EngineError(ErrorKind::output, file.string() + ": exists and was not written by ihcscore batch; "
                                                      "pass --force to replace it, or give another folder");
}

std::string shard_summary_name(const Shard& s) {
  return "summary-" + std::to_string(s.k) + "-of-" + std::to_string(s.n) + ".csv";
}

}  // namespace

BatchPlan prepare_batch(const BatchOptions& opt) {
  BatchPlan plan;
  plan.base_options = make_score_options(opt.scoring);  // usage errors first
  plan.shard = opt.shard;
  plan.input = collect_batch_input(opt.input);
  if (plan.input.items.empty())
    throw EngineError(ErrorKind::input, opt.input.string() + ": no slides found (nothing " +
                                       std::string(plan.input.manifest ? "listed in the manifest" : "in the folder") +
                                       " that opens as a slide or image)");
  for (std::size_t k = 0; k < plan.input.items.size(); ++k)
    if (!plan.shard || plan.shard->takes(k)) plan.selected.push_back(k);
  for (const auto& w : plan.input.warnings) std::fprintf(stderr, "ihcscore: warning: %s\n", w.c_str());

  std::error_code ec;
  fs::create_directories(opt.out, ec);
  if (ec || !fs::is_directory(opt.out))
    throw EngineError(ErrorKind::output, opt.out.string() + ": cannot create the output folder" +
                                        (ec ? ": " + ec.message() : std::string()));
  plan.summary_path = opt.out / (plan.shard ? shard_summary_name(*plan.shard) : std::string("summary.csv"));
  if (!opt.report.empty()) {
    fs::create_directories(opt.report, ec);
    if (ec || !fs::is_directory(opt.report))
      throw EngineError(ErrorKind::output, opt.report.string() + ": cannot create the report folder" +
                                              (ec ? ": " + ec.message() : std::string()));
    plan.report_dir = opt.report;
  }
  // Nothing of the user's is replaced: checked for every output before the first slide is scored.
  check_replaceable(plan.summary_path, batch_summary_file(plan.summary_path), opt.force);
  for (const std::size_t k : plan.selected) {
    const BatchItem& item = plan.input.items[k];
    if (!item.error.empty()) continue;
    const fs::path json = opt.out / (item.id + ".json");
    check_replaceable(json, batch_report_json(json), opt.force);
    if (!plan.report_dir.empty())
      if (const auto other = not_a_report_entry(plan.report_dir / item.id))
        throw EngineError(ErrorKind::output,
                          (plan.report_dir / item.id).string() + ": holds " + *other +
                              ", which a report does not write; not replaced (give another --report folder)");
  }
  if (!plan.report_dir.empty())
    check_replaceable(plan.report_dir / "index.html", contains_text(plan.report_dir / "index.html", kBatchIndexTitle),
                      opt.force);
  write_batch_summary(plan, {});  // fails early when DIR is not writable
  return plan;
}

std::optional<ItemOutcome> settle_without_scoring(const BatchOptions& opt, const BatchItem& item,
                                                  const std::string& hash) {
  if (!item.error.empty()) {
    ItemOutcome o;
    o.result = ItemResult::kFailed;
    o.row.slide = item.id;
    o.row.status = "error";
    o.row.error = one_line(item.path.empty() ? item.error : item.path.string() + ": " + item.error);
    o.row.elapsed_s = nlohmann::json(0.0).dump();
    o.note = "error: " + o.row.error;
    return o;
  }
  if (opt.force) return std::nullopt;
  const auto previous = done_report(opt.out / (item.id + ".json"), hash);
  if (!previous) return std::nullopt;
  ItemOutcome o;
  o.result = ItemResult::kSkipped;
  o.row = summary_row_from_report(item.id, *previous);
  o.note = "skipped (done)";
  return o;
}

ItemOutcome score_batch_item(const BatchOptions& opt, const ScoreOptions& base_options, const BatchItem& item,
                             const std::string& hash, const std::atomic<bool>* stop,
                             const std::function<void(const std::string&)>& detail) {
  const fs::path report_path = opt.out / (item.id + ".json");
  const auto t0 = std::chrono::steady_clock::now();
  auto failed = [&](const std::string& reason) {
    ItemOutcome o;
    o.result = ItemResult::kFailed;
    o.row.slide = item.id;
    o.row.status = "error";
    o.row.error = one_line(reason);
    o.row.elapsed_s =
        nlohmann::json(round_to(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3)).dump();
    o.note = "error: " + o.row.error;
    return o;
  };
  if (!item.error.empty()) return failed(item.path.empty() ? item.error : item.path.string() + ": " + item.error);
  try {
    // The manifest's mpp for this slide, else the file's own, else --mpp.
    ScoringSettings settings = opt.scoring;
    MppUse use = MppUse::fill_missing;
    if (item.mpp) {
      settings.mpp = item.mpp;
      use = MppUse::override_file;
    }
    const auto slide =
        open_for_scoring(item.path.string(), settings, {}, use, "give --mpp or an mpp column in a manifest");
    ScoreOptions options = base_options;
    apply_stains_and_warn(*slide, opt.scoring, options);
    if (!item.roi.empty()) {
      options.roi = load_roi(item.roi);
      options.roi_source = item.roi;
    }
    std::unique_ptr<ReportFolder> folder;
    if (!opt.report.empty()) {
      folder = std::make_unique<ReportFolder>(opt.report / item.id, true);
      folder->attach(*slide, options);
    }
    SlideResult result;
    try {
      result = score_slide(*slide, options, [&](std::int64_t done, std::int64_t total) {
        if (stop && stop->load()) throw Interrupted{};
        if (detail) detail(item.id + ": tile " + std::to_string(done) + "/" + std::to_string(total));
      });
    } catch (const tiling::SlideError& e) {
      throw EngineError(ErrorKind::input, item.path.string() + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      throw EngineError(ErrorKind::usage, item.path.string() + ": " + e.what());
    }
    nlohmann::json report = report_json(result, options);
    report["slide_id"] = item.id;
    report["settings_hash"] = hash;
    const std::string text = json_text(report, 2) + "\n";
    write_file_atomically(report_path, text, true);
    if (folder) folder->commit(*slide, result, options, report);
    ItemOutcome o;
    o.result = ItemResult::kScored;
    // The row comes from the report as written, so a resumed run gives the same row.
    o.row = summary_row_from_report(item.id, nlohmann::json::parse(text));
    o.note = o.row.score + " (" + fmt_seconds(result.elapsed_s) + " s)";
    return o;
  } catch (const Interrupted&) {
    ItemOutcome o;
    o.result = ItemResult::kInterrupted;
    o.note = "interrupted";
    return o;
  } catch (const EngineError& e) {
    if (e.kind() == ErrorKind::output) throw;
    return failed(e.what());
  } catch (const std::exception& e) {
    return failed(item.path.string() + ": " + e.what());
  }
}

namespace {
nlohmann::json row_json(const SummaryRow& r) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, field] : kSummaryColumns) j[name] = r.*field;
  return j;
}

SummaryRow row_from_json(const nlohmann::json& j) {
  SummaryRow r;
  for (const auto& [name, field] : kSummaryColumns) r.*field = j.at(name).get<std::string>();
  return r;
}

const char* result_name(ItemResult r) {
  switch (r) {
    case ItemResult::kScored: return "scored";
    case ItemResult::kSkipped: return "skipped";
    case ItemResult::kFailed: return "failed";
    case ItemResult::kInterrupted: return "interrupted";
  }
  return "failed";
}

ItemResult result_from_name(const std::string& s) {
  if (s == "scored") return ItemResult::kScored;
  if (s == "skipped") return ItemResult::kSkipped;
  if (s == "interrupted") return ItemResult::kInterrupted;
  return ItemResult::kFailed;
}

}  // namespace

nlohmann::json item_done_json(const ItemDone& d) {
  if (d.outcome)
    return {{"result", result_name(d.outcome->result)}, {"row", row_json(d.outcome->row)}, {"note", d.outcome->note}};
  return {{"kind", static_cast<int>(d.fatal_kind)}, {"message", d.fatal_message}};
}

ItemDone item_done_from_json(const nlohmann::json& j) {
  ItemDone d;
  if (j.contains("result")) {
    ItemOutcome o;
    o.result = result_from_name(j.at("result").get<std::string>());
    o.row = row_from_json(j.at("row"));
    o.note = j.at("note").get<std::string>();
    d.outcome = std::move(o);
  } else {
    d.fatal_kind = static_cast<ErrorKind>(j.at("kind").get<int>());
    d.fatal_message = j.at("message").get<std::string>();
  }
  return d;
}

ItemDone score_batch_item_guarded(const BatchOptions& opt, const ScoreOptions& base, const BatchItem& item,
                                  const std::string& hash, const std::atomic<bool>* stop) {
  ItemDone d;
  try {
    d.outcome = score_batch_item(opt, base, item, hash, stop);
  } catch (const EngineError& e) {
    d.fatal_kind = e.kind();
    d.fatal_message = e.what();
  } catch (const std::exception& e) {
    d.fatal_kind = ErrorKind::internal;
    d.fatal_message = item.id + ": " + e.what();
  }
  return d;
}

ItemDone score_batch_item_isolated(const BatchOptions& opt, const ScoreOptions& base, const BatchItem& item,
                                   const std::string& hash, const std::atomic<bool>* stop) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return score_batch_item_guarded(opt, base, item, hash, stop);
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return score_batch_item_guarded(opt, base, item, hash, stop);
  }
  if (pid == 0) {
    ::close(fds[0]);
    const std::string text = json_text(item_done_json(score_batch_item_guarded(opt, base, item, hash, stop)));
    for (std::size_t at = 0; at < text.size();) {
      const ssize_t n = ::write(fds[1], text.data() + at, text.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(kExitInternal);
      at += static_cast<std::size_t>(n);
    }
    std::fflush(nullptr);
    ::_exit(0);  // no destructors or atexit handlers of the parent's state
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      // A stop signal for this process alone (kill PID): the child hears it too.
      if (stop && stop->load()) ::kill(pid, SIGTERM);
    } else {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !text.empty()) {
    try {
      return item_done_from_json(nlohmann::json::parse(text));
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (WIFSIGNALED(status) && stop && stop->load()) {
    ItemOutcome o;
    o.result = ItemResult::kInterrupted;
    o.note = "interrupted";
    return {std::move(o), ErrorKind::internal, {}};
  }
  // The child died without an answer: the slide crashed something (a library's abort, a
  // segfault, the out-of-memory killer). That slide fails; the batch goes on.
  const std::string how = WIFSIGNALED(status)
                              ? "signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")"
                              : "exit status " + std::to_string(WEXITSTATUS(status));
  ItemOutcome o;
  o.result = ItemResult::kFailed;
  o.row.slide = item.id;
  o.row.status = "error";
  o.row.error = one_line(item.path.string() + ": reading or scoring this slide crashed the process scoring it (" + how +
                         "); the other slides are not affected");
  o.row.elapsed_s = "0";
  o.note = "error: " + o.row.error;
  return {std::move(o), ErrorKind::internal, {}};
}

void write_batch_summary(const BatchPlan& plan, std::vector<IndexedRow> rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const IndexedRow& a, const IndexedRow& b) { return a.index < b.index; });
  std::vector<SummaryRow> plain;
  plain.reserve(rows.size());
  for (const auto& r : rows) plain.push_back(r.row);
  std::string text = summary_csv(plain);
  if (plan.shard) {
    // The same lines with input_index,input_count in front.
    const std::string count = std::to_string(plan.input.items.size());
    std::string shard_text = std::string(kShardColumns) + text.substr(0, text.find('\n') + 1);
    std::size_t pos = text.find('\n') + 1;
    for (const auto& r : rows) {
      const std::size_t end = text.find('\n', pos);
      shard_text += std::to_string(r.index) + "," + count + "," + text.substr(pos, end + 1 - pos);
      pos = end + 1;
    }
    text = std::move(shard_text);
  }
  write_file_atomically(plan.summary_path, text, true);
  if (!plan.report_dir.empty()) {
    std::vector<ReportIndexRow> index;
    for (const auto& r : plain) {
      std::error_code ec;
      index.push_back({r.slide, r.status, r.score, r.category, r.guideline, r.decisive_metric, r.decisive_percent,
                       r.percent_complete, r.percent_complete_intense, r.cells, r.error,
                       fs::is_regular_file(plan.report_dir / r.slide / "index.html", ec),
                       fs::is_regular_file(plan.report_dir / r.slide / "thumbnail.jpg", ec)});
    }
    write_file_atomically(plan.report_dir / "index.html", report_index_html(index), true);
  }
}

int finish_batch(const BatchPlan& plan, const BatchCounts& counts, std::size_t finished, bool interrupted) {
  const auto n = plan.selected.size();
  std::string what = std::to_string(n) + " slides";
  if (plan.shard)
    what += " (shard " + std::to_string(plan.shard->k) + "/" + std::to_string(plan.shard->n) + " of " +
            std::to_string(plan.input.items.size()) + ")";
  std::printf("batch: %s: %d scored, %d already done, %d failed%s\n", what.c_str(), counts.scored, counts.skipped,
              counts.failed,
              interrupted ? (", " + std::to_string(n - finished) + " not done (interrupted)").c_str() : "");
  std::printf("  summary: %s\n", plan.summary_path.string().c_str());
  std::fflush(stdout);
  if (interrupted) {
    std::fprintf(stderr, "ihcscore: interrupted; %s lists the %zu slides finished, run the same command "
                         "again to resume\n",
                 plan.summary_path.filename().string().c_str(), finished);
    return kExitInterrupted;
  }
  return counts.failed > 0 ? kExitPartial : kExitOk;
}

int run_batch(const BatchOptions& opt, const std::atomic<bool>* stop) {
  const BatchPlan plan = prepare_batch(opt);
  const bool terminal = Progress::stderr_is_terminal();
  const auto n = static_cast<std::int64_t>(plan.selected.size());
  Progress bar("batch", n, "slides", terminal);
  auto log = [&](std::int64_t k, const std::string& id, const std::string& what) {
    if (terminal) return;
    std::fprintf(stderr, "[%lld/%lld] %s: %s\n", static_cast<long long>(k + 1), static_cast<long long>(n),
                 id.c_str(), what.c_str());
    std::fflush(stderr);
  };

  std::vector<IndexedRow> rows;
  BatchCounts counts;
  bool interrupted = false;
  for (std::int64_t k = 0; k < n; ++k) {
    if (stop && stop->load()) {
      interrupted = true;
      break;
    }
    const std::size_t index = plan.selected[static_cast<std::size_t>(k)];
    const BatchItem& item = plan.input.items[index];
    const std::string hash = settings_hash(opt.scoring, item);
    std::optional<ItemOutcome> outcome = settle_without_scoring(opt, item, hash);
    if (!outcome) {
      bar.set_detail(item.id);
      ItemDone done = score_batch_item_isolated(opt, plan.base_options, item, hash, stop);
      if (!done.outcome) throw EngineError(done.fatal_kind, done.fatal_message);
      outcome = std::move(done.outcome);
    }
    if (outcome->result == ItemResult::kInterrupted) {
      interrupted = true;
      break;
    }
    counts.add(outcome->result);
    log(k, item.id, outcome->note);
    rows.push_back({index, std::move(outcome->row)});
    write_batch_summary(plan, rows);
    bar.advance();
  }
  bar.finish();
  write_batch_summary(plan, rows);
  return finish_batch(plan, counts, rows.size(), interrupted);
}

namespace {

// summary-K-of-N.csv -> {K, N}.
std::optional<Shard> shard_of_summary_name(const std::string& name) {
  static constexpr std::string_view kPrefix = "summary-", kSuffix = ".csv";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.rfind(kPrefix, 0) != 0 ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
    return std::nullopt;
  const std::string middle = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const auto of = middle.find("-of-");
  if (of == std::string::npos) return std::nullopt;
  try {
    const Shard s = parse_shard(middle.substr(0, of) + "/" + middle.substr(of + 4));
    if (shard_summary_name(s) != name) return std::nullopt;  // leading zeros and the like
    return s;
  } catch (const EngineError&) {
    return std::nullopt;
  }
}

}  // namespace

int merge_batch(const std::vector<fs::path>& dirs, const fs::path& out) {
  struct Found {
    fs::path file;
    Shard shard;
  };
  std::vector<Found> found;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw EngineError(ErrorKind::input, dir.string() + ": no such folder");
    std::vector<Found> here;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (const auto s = shard_of_summary_name(it->path().filename().string()); s && it->is_regular_file(ec))
        here.push_back({it->path(), *s});
    if (ec) throw EngineError(ErrorKind::input, dir.string() + ": cannot read the folder: " + ec.message());
    if (here.empty())
      throw EngineError(ErrorKind::input, dir.string() + ": no shard summaries (summary-K-of-N.csv from batch --shard K/N)");
    found.insert(found.end(), here.begin(), here.end());
  }
  const int n = found.front().shard.n;
  std::vector<int> seen(static_cast<std::size_t>(n) + 1, 0);
  for (const auto& f : found) {
    if (f.shard.n != n)
      throw EngineError(ErrorKind::input, f.file.string() + ": a shard of " + std::to_string(f.shard.n) +
                                         " parts beside shards of " + std::to_string(n) +
                                         " (" + found.front().file.string() + "); remove the stale ones");
    if (seen[static_cast<std::size_t>(f.shard.k)]++)
      throw EngineError(ErrorKind::input, f.file.string() + ": shard " + std::to_string(f.shard.k) + "/" +
                                         std::to_string(n) + " found twice");
  }
  for (int k = 1; k <= n; ++k)
    if (!seen[static_cast<std::size_t>(k)])
      throw EngineError(ErrorKind::input, "shard " + std::to_string(k) + "/" + std::to_string(n) +
                                         ": no " + shard_summary_name(Shard{k, n}) + " in the merged folders (not run yet?)");

  struct Row {
    SummaryRow row;
    fs::path from;  // folder of the shard summary
  };
  std::optional<std::size_t> count;
  std::vector<std::optional<Row>> rows;
  for (const auto& f : found) {
    const CsvTable csv = read_csv(f.file);
    const std::size_t c_index = csv.require_column("input_index"), c_count = csv.require_column("input_count");
    // Every summary column, by name; borderline and warnings may be missing (shards written by a
    // version before them: left empty).
    std::array<std::optional<std::size_t>, std::size(kSummaryColumns)> c{};
    for (std::size_t k = 0; k < c.size(); ++k) {
      const std::string_view name = kSummaryColumns[k].first;
      c[k] = name == "borderline" || name == "warnings" ? csv.column(name) : csv.require_column(name);
    }
    for (std::size_t r = 0; r < csv.rows.size(); ++r) {
      const auto& line = csv.rows[r];
      const std::string where = f.file.string() + ": line " + std::to_string(csv.lines[r]);
      auto number = [&](const std::string& text, const char* what) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (text.empty() || end != text.c_str() + text.size() || text[0] == '-')
          throw EngineError(ErrorKind::input, where + ": " + what + " must be a whole number, got '" + text + "'");
        return static_cast<std::size_t>(v);
      };
      const std::size_t index = number(line[c_index], "input_index");
      const std::size_t total = number(line[c_count], "input_count");
      if (!count) {
        count = total;
        rows.resize(total);
      }
      if (total != *count)
        throw EngineError(ErrorKind::input, where + ": input_count " + std::to_string(total) + " where other rows say " +
                                           std::to_string(*count) + " (shards of different inputs?)");
      if (index >= total || Shard{f.shard.k, n}.takes(index) == false)
        throw EngineError(ErrorKind::input, where + ": input_index " + std::to_string(index) + " does not belong to shard " +
                                           std::to_string(f.shard.k) + "/" + std::to_string(n));
      if (rows[index]) throw EngineError(ErrorKind::input, where + ": input_index " + std::to_string(index) + " repeated");
      Row row;
      row.from = f.file.parent_path();
      for (std::size_t k = 0; k < c.size(); ++k)
        if (c[k]) row.row.*kSummaryColumns[k].second = line[*c[k]];
      rows[index] = std::move(row);
    }
  }
  if (!count) throw EngineError(ErrorKind::input, "the shard summaries list no slides");
  for (std::size_t k = 0; k < rows.size(); ++k)
    if (!rows[k]) {
      const int shard = static_cast<int>(k % static_cast<std::size_t>(n)) + 1;
      throw EngineError(ErrorKind::input, shard_summary_name(Shard{shard, n}) + ": slide " + std::to_string(k + 1) + " of " +
                                         std::to_string(*count) + " missing (shard " + std::to_string(shard) + "/" +
                                         std::to_string(n) + " did not finish? run it again)");
    }

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out))
    throw EngineError(ErrorKind::output, out.string() + ": cannot create the output folder" +
                                        (ec ? ": " + ec.message() : std::string()));
  std::vector<SummaryRow> plain;
  int failed = 0, copied = 0;
  for (const auto& r : rows) {
    plain.push_back(r->row);
    if (r->row.status != "ok") {
      ++failed;
      continue;
    }
    const fs::path report = r->from / (r->row.slide + ".json");
    const fs::path target = out / (r->row.slide + ".json");
    if (fs::equivalent(r->from, out, ec)) continue;
    std::ifstream in(report, std::ios::binary);
    if (!in) throw EngineError(ErrorKind::input, report.string() + ": missing (listed in the shard summary)");
    std::ostringstream text;
    text << in.rdbuf();
    write_file_atomically(target, text.str(), true);
    ++copied;
  }
  const fs::path summary_path = out / "summary.csv";
  write_file_atomically(summary_path, summary_csv(plain), true);
  std::printf("batch: merged %zu slides from %d shard summaries: %zu ok, %d failed%s\n", plain.size(), n,
              plain.size() - static_cast<std::size_t>(failed), failed,
              copied ? (", " + std::to_string(copied) + " reports copied").c_str() : "");
  std::printf("  summary: %s\n", summary_path.string().c_str());
  std::fflush(stdout);
  return failed > 0 ? kExitPartial : kExitOk;
}

}  // namespace ihc::cli
