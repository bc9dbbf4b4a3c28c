#include "ihc/engine/batch.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <system_error>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/engine/progress.hpp"
#include "ihc/engine/roi.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/validation.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string one_line(std::string s) {
  for (auto& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

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

bool has_slide_extension(const fs::path& path) {
  static const std::set<std::string> kExt{".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".bif",
                                          ".vms", ".png", ".jpg", ".jpeg"};
  return kExt.count(lower(path.extension().string())) > 0;
}

std::vector<std::string> unique_ids(const std::vector<std::string>& wanted) {
  std::vector<std::string> clean;
  clean.reserve(wanted.size());
  for (std::string id : wanted) {
    for (auto& c : id)
      if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
    if (id.empty() || id == "." || id == "..") id = "slide";
    if (lower(id) == "summary") id += "_";  // DIR/summary.csv is ours, keep reports apart from it
    clean.push_back(std::move(id));
  }
  std::set<std::string> used;
  std::vector<std::string> out;
  out.reserve(clean.size());
  for (const auto& id : clean) {
    std::string candidate = id;
    for (int k = 2; used.count(candidate); ++k) candidate = id + "-" + std::to_string(k);
    used.insert(candidate);
    out.push_back(candidate);
  }
  return out;
}

BatchInput collect_batch_input(const fs::path& input) {
  std::error_code ec;
  const auto st = fs::status(input, ec);
  if (ec || !fs::exists(st)) throw CommandError(kExitInput, input.string() + ": no such file or folder");
  BatchInput in;
  std::vector<std::string> wanted;
  if (fs::is_directory(st)) {
    std::vector<fs::path> files;
    fs::directory_iterator it(input, ec);
    if (ec) throw CommandError(kExitInput, input.string() + ": cannot read the folder: " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) throw CommandError(kExitInput, input.string() + ": cannot read the folder: " + ec.message());
      std::error_code e2;
      if (it->is_regular_file(e2)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    for (const auto& f : files) {
      BatchItem item;
      item.path = f;
      try {
        (void)tiling::open_slide(f);
      } catch (const tiling::SlideError& e) {
        if (e.kind() == tiling::SlideError::Kind::Unsupported && !has_slide_extension(f)) continue;
        item.error = one_line(e.what());
      } catch (const std::exception& e) {
        item.error = one_line(e.what());
      }
      wanted.push_back(slide_stem(f.filename().string()));
      in.items.push_back(std::move(item));
    }
  } else {
    in.manifest = true;
    const CsvTable csv = read_csv(input);
    const std::size_t path_col = csv.require_column("path");
    const auto id_col = csv.column("id");
    const auto mpp_col = csv.column("mpp");
    const auto roi_col = csv.column("roi");
    const fs::path base = input.parent_path();
    for (std::size_t r = 0; r < csv.rows.size(); ++r) {
      const auto& row = csv.rows[r];
      BatchItem item;
      const std::string& p = row[path_col];
      const std::string where = "manifest line " + std::to_string(csv.lines[r]);
      if (p.empty()) {
        item.error = where + ": empty path";
      } else {
        item.path = fs::path(p).is_absolute() ? fs::path(p) : base / p;
      }
      if (mpp_col && !row[*mpp_col].empty()) {
        const std::string& text = row[*mpp_col];
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end != text.c_str() + text.size() || !std::isfinite(v) || v <= 0) {
          if (item.error.empty()) item.error = where + ": mpp must be a number above zero, got '" + text + "'";
        } else {
          item.mpp = v;
        }
      }
      if (roi_col && !row[*roi_col].empty()) {
        const fs::path roi(row[*roi_col]);
        item.roi = (roi.is_absolute() ? roi : base / roi).string();
      }
      std::string id = id_col ? row[*id_col] : std::string();
      if (id.empty()) id = p.empty() ? "line" + std::to_string(csv.lines[r]) : slide_stem(p);
      wanted.push_back(id);
      in.items.push_back(std::move(item));
    }
  }
  const auto ids = unique_ids(wanted);
  for (std::size_t k = 0; k < ids.size(); ++k) in.items[k].id = ids[k];
  return in;
}

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string settings_canonical(const ScoringCli& cli, const BatchItem& item) {
  const ScoreOptions o = make_score_options(cli);
  std::ostringstream s;
  s << "ihcscore-batch-settings/1\n";
  s << "version=" << version_string() << "\n";
  s << "analysis_mpp=" << fmt_double(o.analysis_mpp) << "\n";
  s << "guideline=" << cli.guideline << "\n";
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

std::string settings_hash(const ScoringCli& cli, const BatchItem& item) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a64(settings_canonical(cli, item))));
  return buf;
}

std::string csv_field(std::string_view text) {
  std::string s = one_line(std::string(text));
  if (s.find_first_of(",\"") == std::string::npos && (s.empty() || (s.front() != ' ' && s.back() != ' ')))
    return s;
  std::string q = "\"";
  for (const char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string summary_csv(const std::vector<SummaryRow>& rows) {
  std::string out = std::string(kSummaryHeader) + "\n";
  for (const auto& r : rows) {
    for (const auto* f : {&r.slide, &r.status, &r.score, &r.category, &r.percent_complete,
                          &r.percent_complete_intense, &r.cells, &r.error}) {
      out += csv_field(*f);
      out += ',';
    }
    out += csv_field(r.elapsed_s) + "\n";
  }
  return out;
}

SummaryRow summary_row_from_report(const std::string& id, const nlohmann::json& report) {
  SummaryRow row;
  row.slide = id;
  row.status = "ok";
  row.score = report.value("score", "");
  row.category = report.value("category", "");
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

int run_batch(const BatchOptions& opt, const std::atomic<bool>* stop) {
  const ScoreOptions base_options = make_score_options(opt.scoring);  // usage errors first
  const BatchInput input = collect_batch_input(opt.input);
  if (input.items.empty())
    throw CommandError(kExitInput, opt.input.string() + ": no slides found (nothing " +
                                       std::string(input.manifest ? "listed in the manifest" : "in the folder") +
                                       " that opens as a slide or image)");

  std::error_code ec;
  fs::create_directories(opt.out, ec);
  if (ec || !fs::is_directory(opt.out))
    throw CommandError(kExitOutput, opt.out.string() + ": cannot create the output folder" +
                                        (ec ? ": " + ec.message() : std::string()));
  const fs::path summary_path = opt.out / "summary.csv";
  std::vector<SummaryRow> rows;
  write_file_atomically(summary_path, summary_csv(rows), true);  // fails early when DIR is not writable

  const bool terminal = Progress::stderr_is_terminal();
  const auto n = static_cast<std::int64_t>(input.items.size());
  Progress bar("batch", n, "slides", terminal);
  auto log = [&](std::int64_t k, const std::string& id, const std::string& what) {
    if (terminal) return;
    std::fprintf(stderr, "[%lld/%lld] %s: %s\n", static_cast<long long>(k + 1), static_cast<long long>(n),
                 id.c_str(), what.c_str());
    std::fflush(stderr);
  };
  auto stopped = [&] { return stop && stop->load(); };

  int failed = 0, skipped = 0, scored = 0;
  bool interrupted = false;
  for (std::int64_t k = 0; k < n; ++k) {
    if (stopped()) {
      interrupted = true;
      break;
    }
    const BatchItem& item = input.items[static_cast<std::size_t>(k)];
    const fs::path report_path = opt.out / (item.id + ".json");
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    auto record_error = [&](const std::string& reason) {
      SummaryRow row;
      row.slide = item.id;
      row.status = "error";
      row.error = one_line(reason);
      row.elapsed_s = nlohmann::json(round_to(seconds(), 3)).dump();
      rows.push_back(std::move(row));
      ++failed;
      log(k, item.id, "error: " + one_line(reason));
    };

    if (!item.error.empty()) {
      record_error(item.path.empty() ? item.error : item.path.string() + ": " + item.error);
    } else {
      const std::string hash = settings_hash(opt.scoring, item);
      std::optional<nlohmann::json> previous;
      if (!opt.force) previous = done_report(report_path, hash);
      if (previous) {
        rows.push_back(summary_row_from_report(item.id, *previous));
        ++skipped;
        log(k, item.id, "skipped (done)");
      } else {
        try {
          std::unique_ptr<tiling::Slide> slide;
          try {
            slide = tiling::open_slide(item.path);
          } catch (const tiling::SlideError& e) {
            throw CommandError(kExitInput, item.path.string() + ": " + e.what());
          }
          if (item.mpp)
            slide->set_mpp(*item.mpp);
          else if (!slide->mpp() && opt.scoring.mpp)
            slide->set_mpp(*opt.scoring.mpp);
          if (!slide->mpp())
            throw CommandError(kExitUsage, item.path.string() + ": " +
                                               (slide->vendor() == "image" ? std::string("a plain image has no resolution")
                                                                           : std::string("the slide records no resolution")) +
                                               "; give --mpp or an mpp column in a manifest");
          ScoreOptions options = base_options;
          apply_stain_choice(*slide, opt.scoring, options);
          if (!item.roi.empty()) {
            options.roi = load_roi(item.roi);
            options.roi_source = item.roi;
          }
          SlideResult result;
          try {
            result = score_slide(*slide, options, [&](std::int64_t done, std::int64_t total) {
              if (stopped()) throw Interrupted{};
              bar.set_detail(item.id + ": tile " + std::to_string(done) + "/" + std::to_string(total));
            });
          } catch (const tiling::SlideError& e) {
            throw CommandError(kExitInput, item.path.string() + ": " + e.what());
          } catch (const std::invalid_argument& e) {
            throw CommandError(kExitUsage, item.path.string() + ": " + e.what());
          }
          nlohmann::json report = report_json(result, options);
          report["slide_id"] = item.id;
          report["settings_hash"] = hash;
          const std::string text = report.dump(2) + "\n";
          write_file_atomically(report_path, text, true);
          // The row comes from the report as written, so a resumed run gives the same row.
          rows.push_back(summary_row_from_report(item.id, nlohmann::json::parse(text)));
          ++scored;
          log(k, item.id, rows.back().score + " (" + fmt_seconds(result.elapsed_s) + " s)");
        } catch (const Interrupted&) {
          interrupted = true;
          break;
        } catch (const CommandError& e) {
          if (e.code() == kExitOutput) throw;
          record_error(e.what());
        } catch (const std::exception& e) {
          record_error(item.path.string() + ": " + e.what());
        }
      }
    }
    write_file_atomically(summary_path, summary_csv(rows), true);
    bar.advance();
  }
  bar.finish();
  write_file_atomically(summary_path, summary_csv(rows), true);

  std::printf("batch: %lld slides: %d scored, %d already done, %d failed%s\n", static_cast<long long>(n), scored,
              skipped, failed,
              interrupted ? (", " + std::to_string(n - static_cast<std::int64_t>(rows.size())) + " not done (interrupted)").c_str()
                          : "");
  std::printf("  summary: %s\n", summary_path.string().c_str());
  std::fflush(stdout);
  if (interrupted) {
    std::fprintf(stderr, "ihcscore: interrupted; summary.csv lists the %zu slides finished, run the same command "
                         "again to resume\n",
                 rows.size());
    return kExitInterrupted;
  }
  return failed > 0 ? kExitPartial : kExitOk;
}

}  // namespace ihc::engine
