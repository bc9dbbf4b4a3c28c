#include "ihc/engine/batch_input.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <system_error>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/engine/validation.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Characters that cannot appear in a file name become '_'; "summary" is kept apart from
// DIR/summary.csv.
std::string file_safe_id(std::string id) {
  for (auto& c : id)
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
  if (id.empty() || id == "." || id == "..") id = "slide";
  if (lower(id) == "summary") id += "_";
  return id;
}

}  // namespace

bool has_slide_extension(const fs::path& path) {
  static const std::set<std::string> kExt{".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".bif",
                                          ".vms", ".png", ".jpg", ".jpeg"};
  return kExt.count(lower(path.extension().string())) > 0;
}

std::vector<std::string> unique_ids(const std::vector<std::string>& wanted) {
  std::set<std::string> used;
  std::vector<std::string> out;
  out.reserve(wanted.size());
  for (const auto& w : wanted) {
    const std::string id = file_safe_id(w);
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
  if (ec || !fs::exists(st)) throw EngineError(ErrorKind::input, input.string() + ": no such file or folder");
  BatchInput in;
  std::vector<std::string> wanted;
  if (fs::is_directory(st)) {
    std::vector<fs::path> files;
    fs::directory_iterator it(input, ec);
    if (ec) throw EngineError(ErrorKind::input, input.string() + ": cannot read the folder: " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) throw EngineError(ErrorKind::input, input.string() + ": cannot read the folder: " + ec.message());
      std::error_code e2;
      if (it->is_regular_file(e2)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    for (const auto& f : files) {
      BatchItem item;
      item.path = f;
      try {
        // A plain image is recognised by its first bytes; decoding it here as well as when
        // scoring doubled the cost (a damaged one is that slide's error row when scored).
        if (!tiling::is_plain_image_file(f)) (void)tiling::open_slide(f);
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
    // "path", or "file" as in a labels CSV (validate's truth), so one table can list and label the slides.
    const auto named_path = csv.column("path") ? csv.column("path") : csv.column("file");
    const std::size_t path_col = named_path ? *named_path : csv.require_column("path");
    const auto id_col = csv.column("id");
    const auto mpp_col = csv.column("mpp");
    const auto roi_col = csv.column("roi");
    const fs::path base = input.parent_path();
    std::map<std::string, std::size_t> given_ids;  // id column -> its line
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
      if (!id.empty()) {
        // An id the user wrote names one slide: a second row with it is a mistake in the
        // manifest (renaming it would leave reports no one can match to their slides).
        const auto [seen, fresh] = given_ids.emplace(id, csv.lines[r]);
        if (!fresh)
          throw EngineError(ErrorKind::input, input.string() + ": " + where + ": id '" + id + "' is already on line " +
                                                 std::to_string(seen->second) + "; give each slide its own id");
      }
      if (id.empty()) id = p.empty() ? "line" + std::to_string(csv.lines[r]) : slide_stem(p);
      wanted.push_back(id);
      in.items.push_back(std::move(item));
    }
  }
  const auto ids = unique_ids(wanted);
  for (std::size_t k = 0; k < ids.size(); ++k) {
    in.items[k].id = ids[k];
    const std::string id = file_safe_id(wanted[k]);
    if (ids[k] != id && !in.items[k].path.empty())
      in.warnings.push_back(in.items[k].path.string() + ": id '" + id + "' is taken by an earlier slide; reported as '" +
                            ids[k] + "'");
  }
  return in;
}

}  // namespace ihc::engine
