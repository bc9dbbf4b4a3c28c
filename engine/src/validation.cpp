#include "ihc/engine/validation.hpp"
#include "ihc/engine/text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>

#include "ihc/engine/errors.hpp"
#include "ihc/scoring/ish.hpp"

namespace ihc::engine {
namespace {
namespace fs = std::filesystem;

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  return true;
}

std::string trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

[[noreturn]] void csv_error(const std::string& file, std::int64_t line, const std::string& reason) {
  throw EngineError(ErrorKind::input, file + ": line " + std::to_string(line) + ": " + reason);
}

// A per cent 0-100; empty -> nullopt; anything else is an error naming file and line.
std::optional<double> parse_percent(const std::string& text, const std::string& file, std::int64_t line,
                                    std::string_view column) {
  if (text.empty()) return std::nullopt;
  double v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v))
    csv_error(file, line, std::string(column) + " \"" + text + "\" is not a number");
  if (v < 0 || v > 100) csv_error(file, line, std::string(column) + " " + text + " is outside 0-100");
  return v;
}

bool is_ok_status(std::string_view s) { return iequals(s, "ok"); }

}  // namespace

// ---------------------------------------------------------------- CSV

std::optional<std::size_t> CsvTable::column(std::string_view name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (iequals(header[i], name)) return i;
  return std::nullopt;
}

std::size_t CsvTable::require_column(std::string_view name) const {
  if (const auto c = column(name)) return *c;
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ",") + h;
  throw EngineError(ErrorKind::input, file + ": no \"" + std::string(name) + "\" column (header is: " + have + ")");
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

CsvTable parse_csv(std::string_view text, const std::string& file) {
  CsvTable table;
  table.file = file;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;        // the current field was quoted
  bool in_quotes = false;     // inside the quotes now
  bool after_quote = false;   // the closing quote was seen; only spaces may follow
  bool row_had_quote = false; // a quoted empty field makes a row non-blank
  bool have_header = false;
  std::int64_t line = 1, row_line = 1, quote_line = 1;

  const auto end_field = [&] {
    fields.push_back(quoted ? field : trim(field));
    field.clear();
    quoted = in_quotes = after_quote = false;
  };
  const auto end_row = [&] {
    end_field();
    const bool blank = fields.size() == 1 && fields[0].empty() && !row_had_quote;
    if (blank) {
    } else if (!have_header) {
      table.header = fields;
      have_header = true;
    } else if (fields.size() != table.header.size()) {
      csv_error(file, row_line,
                "expected " + std::to_string(table.header.size()) + " fields as in the header, found " +
                    std::to_string(fields.size()));
    } else {
      table.rows.push_back(fields);
      table.lines.push_back(row_line);
    }
    fields.clear();
    row_had_quote = false;
  };

  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool crlf = c == '\r' && i + 1 < text.size() && text[i + 1] == '\n';
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
          after_quote = true;
        }
      } else if (!crlf) {  // a CRLF inside quotes is kept as a plain line break
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '\n') {
      end_row();
      ++line;
      row_line = line;
    } else if (crlf) {
      // the \n that follows ends the row
    } else if (c == '"') {
      if (after_quote || !trim(field).empty())
        csv_error(file, line, "a quote inside an unquoted field (quote the whole field and double inner quotes)");
      field.clear();
      quoted = in_quotes = row_had_quote = true;
      quote_line = line;
    } else if (c == ',') {
      end_field();
    } else if (after_quote) {
      if (c != ' ' && c != '\t') csv_error(file, line, "text after a closing quote");
    } else {
      field += c;
    }
  }
  if (in_quotes) csv_error(file, quote_line, "a quoted field is never closed");
  end_row();
  if (!have_header) throw EngineError(ErrorKind::input, file + ": empty (no header line)");
  return table;
}

CsvTable read_csv(const fs::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw EngineError(ErrorKind::input, name + ": no such file");
  if (fs::is_directory(path, ec)) throw EngineError(ErrorKind::input, name + ": is a folder, not a CSV file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError(ErrorKind::input, name + ": cannot be opened for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw EngineError(ErrorKind::input, name + ": read error");
  return parse_csv(ss.str(), name);
}

// ---------------------------------------------------------------- names and scores

std::string slide_stem(std::string_view path) {
  const auto slash = path.find_last_of("/\\");
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  static constexpr std::array<std::string_view, 22> kExtensions{
      "svs", "tif", "tiff", "ndpi", "mrxs", "scn", "bif", "vms", "vmu", "svslide", "czi",
      "isyntax", "dcm", "qptiff", "ome", "png", "jpg", "jpeg", "bmp", "jp2", "webp", "btf"};
  for (bool stripped = true; stripped;) {
    stripped = false;
    const auto dot = name.find_last_of('.');
    if (dot == std::string_view::npos || dot == 0) break;
    const auto ext = name.substr(dot + 1);
    for (const auto known : kExtensions) {
      if (iequals(ext, known)) {
        name = name.substr(0, dot);
        stripped = true;
        break;
      }
    }
  }
  return std::string(name);
}

std::optional<int> parse_score_class(std::string_view text) {
  const auto s = scoring::parse_ihc_score(text);
  if (!s) return std::nullopt;
  return static_cast<int>(*s) - static_cast<int>(scoring::SlideScore::Zero);
}

// ---------------------------------------------------------------- agreement statistics

ConfusionMatrix confusion_matrix(const std::vector<ScorePair>& pairs) {
  ConfusionMatrix m{};
  for (const auto& p : pairs) {
    if (p.truth < 0 || p.truth > 3 || p.engine < 0 || p.engine > 3)
      throw std::invalid_argument("score class outside 0..3");
    ++m[p.truth][p.engine];
  }
  return m;
}

double cohen_kappa(const ConfusionMatrix& m, KappaWeighting w) {
  std::array<double, 4> rows{}, cols{};
  double n = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const auto v = static_cast<double>(m[i][j]);
      rows[i] += v;
      cols[j] += v;
      n += v;
    }
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  double observed = 0, expected = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const double d = std::abs(i - j);
      const double weight = w == KappaWeighting::Unweighted ? (i == j ? 0.0 : 1.0)
                            : w == KappaWeighting::Linear   ? d / 3.0
                                                            : d * d / 9.0;
      observed += weight * static_cast<double>(m[i][j]);
      expected += weight * rows[i] * cols[j] / n;
    }
  if (expected <= 0) return std::numeric_limits<double>::quiet_NaN();
  return 1.0 - observed / expected;
}

std::optional<Interval> bootstrap_kappa_interval(const std::vector<ScorePair>& pairs, KappaWeighting w,
                                                 int resamples, std::uint64_t seed, double level) {
  if (pairs.size() < 2 || resamples < 1) return std::nullopt;
  std::mt19937_64 rng(seed);
  const std::uint64_t n = pairs.size();
  std::vector<double> kappas;
  kappas.reserve(static_cast<std::size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    ConfusionMatrix m{};
    for (std::uint64_t k = 0; k < n; ++k) {
      const auto& p = pairs[rng() % n];
      ++m[p.truth][p.engine];
    }
    const double kappa = cohen_kappa(m, w);
    if (std::isfinite(kappa)) kappas.push_back(kappa);
  }
  if (kappas.empty()) return std::nullopt;
  std::sort(kappas.begin(), kappas.end());
  // Linear interpolation between order statistics (R's type 7).
  const auto quantile = [&](double p) {
    const double h = (static_cast<double>(kappas.size()) - 1.0) * p;
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const auto hi = std::min(lo + 1, kappas.size() - 1);
    return kappas[lo] + (h - static_cast<double>(lo)) * (kappas[hi] - kappas[lo]);
  };
  const double tail = (1.0 - level) / 2.0;
  return Interval{quantile(tail), quantile(1.0 - tail)};
}

ScoreAgreement score_agreement(const std::vector<ScorePair>& pairs, int resamples, std::uint64_t seed) {
  if (pairs.empty()) throw std::invalid_argument("no slide pairs to compare");
  ScoreAgreement a;
  a.matrix = confusion_matrix(pairs);
  a.n = static_cast<std::int64_t>(pairs.size());
  std::int64_t agree = 0, clinical_agree = 0;
  for (int i = 0; i < 4; ++i) {
    agree += a.matrix[i][i];
    for (int j = 0; j < 4; ++j) {
      a.per_class[i].truth_n += a.matrix[i][j];
      a.per_class[j].engine_n += a.matrix[i][j];
      a.clinical_matrix[clinical_group(i)][clinical_group(j)] += a.matrix[i][j];
      if (clinical_group(i) == clinical_group(j)) clinical_agree += a.matrix[i][j];
    }
  }
  const auto dn = static_cast<double>(a.n);
  a.accuracy = static_cast<double>(agree) / dn;
  a.clinical_group_accuracy = static_cast<double>(clinical_agree) / dn;
  for (int i = 0; i < 4; ++i) {
    auto& c = a.per_class[i];
    const auto correct = static_cast<double>(a.matrix[i][i]);
    if (c.truth_n > 0) c.sensitivity = correct / static_cast<double>(c.truth_n);
    if (c.engine_n > 0) c.precision = correct / static_cast<double>(c.engine_n);
  }
  a.kappa_quadratic = cohen_kappa(a.matrix, KappaWeighting::Quadratic);
  a.kappa_linear = cohen_kappa(a.matrix, KappaWeighting::Linear);
  a.kappa_unweighted = cohen_kappa(a.matrix, KappaWeighting::Unweighted);
  a.bootstrap_resamples = resamples;
  a.bootstrap_seed = seed;
  a.kappa_quadratic_ci = bootstrap_kappa_interval(pairs, KappaWeighting::Quadratic, resamples, seed);
  return a;
}

BlandAltman bland_altman(const std::vector<double>& truth, const std::vector<double>& engine) {
  if (truth.empty() || truth.size() != engine.size())
    throw std::invalid_argument("Bland-Altman needs equally many (at least one) truth and engine values");
  BlandAltman b;
  b.n = static_cast<std::int64_t>(truth.size());
  const auto dn = static_cast<double>(b.n);
  double sum = 0, sum_abs = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const double d = engine[i] - truth[i];
    sum += d;
    sum_abs += std::abs(d);
  }
  b.bias = sum / dn;
  b.mean_absolute_error = sum_abs / dn;
  double ss = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const double dev = engine[i] - truth[i] - b.bias;
    ss += dev * dev;
  }
  b.sd_difference = b.n > 1 ? std::sqrt(ss / (dn - 1.0)) : 0.0;
  b.lower_limit = b.bias - 1.96 * b.sd_difference;
  b.upper_limit = b.bias + 1.96 * b.sd_difference;
  return b;
}

// ---------------------------------------------------------------- the two input files

namespace {
// A row's slide as its file stem; refused when empty or already named on an earlier line.
std::string unique_slide_stem(const CsvTable& csv, std::int64_t line, const std::string& cell,
                              std::map<std::string, std::int64_t>& first_line) {
  std::string slide = slide_stem(cell);
  if (slide.empty()) csv_error(csv.file, line, "empty slide name");
  const auto [it, fresh] = first_line.emplace(slide, line);
  if (!fresh)
    csv_error(csv.file, line, "slide " + slide + " appears again (first on line " + std::to_string(it->second) + ")");
  return slide;
}
}  // namespace

std::vector<TruthRow> read_truth(const CsvTable& csv) {
  const auto slide_col = csv.column("file") && !csv.column("slide") ? *csv.column("file") : csv.require_column("slide");
  const auto score_col =
      csv.column("ihc_score") && !csv.column("score") ? *csv.column("ihc_score") : csv.require_column("score");
  const auto pc_col = csv.column("percent_complete");
  std::vector<TruthRow> out;
  std::map<std::string, std::int64_t> first_line;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const auto& row = csv.rows[r];
    const auto line = csv.lines[r];
    TruthRow t;
    t.line = line;
    t.file = row[slide_col];
    t.slide = unique_slide_stem(csv, line, t.file, first_line);
    const auto score = parse_score_class(row[score_col]);
    if (!score) csv_error(csv.file, line, "score \"" + row[score_col] + "\" is not 0, 1+, 2+ or 3+");
    t.score = *score;
    if (pc_col) t.percent_complete = parse_percent(row[*pc_col], csv.file, line, "percent_complete");
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<ResultRow> read_results(const CsvTable& csv) {
  const auto slide_col = csv.require_column("slide");
  const auto status_col = csv.require_column("status");
  const auto score_col = csv.require_column("score");
  const auto pc_col = csv.column("percent_complete");
  const auto guideline_col = csv.column("guideline");
  std::vector<ResultRow> out;
  std::map<std::string, std::int64_t> first_line;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const auto& row = csv.rows[r];
    const auto line = csv.lines[r];
    ResultRow x;
    x.line = line;
    x.slide = unique_slide_stem(csv, line, row[slide_col], first_line);
    x.status = row[status_col];
    if (guideline_col) x.guideline = row[*guideline_col];
    if (is_ok_status(x.status)) {
      const auto& text = row[score_col];
      if (!iequals(text, "not-evaluable") && !text.empty()) {
        x.score = parse_score_class(text);
        if (!x.score) csv_error(csv.file, line, "score \"" + text + "\" is not 0, 1+, 2+, 3+ or not-evaluable");
      }
      if (pc_col) x.percent_complete = parse_percent(row[*pc_col], csv.file, line, "percent_complete");
    }
    out.push_back(std::move(x));
  }
  return out;
}

SlideMatching match_slides(const std::vector<TruthRow>& truth, const std::vector<ResultRow>& results) {
  SlideMatching m;
  std::map<std::string, const ResultRow*> by_stem;
  for (const auto& r : results) by_stem.emplace(r.slide, &r);
  std::map<std::string, bool> in_truth;
  for (const auto& t : truth) {
    in_truth[t.slide] = true;
    const auto it = by_stem.find(t.slide);
    if (it == by_stem.end()) {
      m.unmatched_truth.push_back(t.slide);
    } else if (it->second->score) {
      m.matched.push_back({t.slide, t.score, *it->second->score, t.percent_complete, it->second->percent_complete});
    }
  }
  for (const auto& r : results) {
    if (!r.score) {
      m.excluded.push_back({r.slide, is_ok_status(r.status) ? std::string("score not-evaluable")
                                                            : "status " + (r.status.empty() ? "(empty)" : r.status)});
    } else if (!in_truth.count(r.slide)) {
      m.unmatched_results.push_back(r.slide);
    }
  }
  return m;
}

}  // namespace ihc::engine
