#pragma once
// Agreement of the engine with a reference (pathologist) scoring: the statistics behind
// `ihcscore validate`, plus the small CSV reader it needs. Everything but read_csv is a pure
// function of its arguments.
//
// Conventions: scores are class indices 0..3 for "0", "1+", "2+", "3+"; a confusion matrix is
// indexed [truth][engine] (rows truth, columns engine); a percent_complete difference is
// engine - truth, so a positive bias means the engine finds more complete membranes.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ihc::engine {

// ---------------------------------------------------------------- CSV
// Comma-separated, first line the header. Quoted fields ("a, b", "say ""hi""", embedded line
// breaks), CRLF or LF line ends, a UTF-8 byte-order mark, and blank lines are handled; unquoted
// fields are trimmed of spaces and tabs. A row whose field count differs from the header's is an
// error. Errors are EngineError(ErrorKind::input, "<file>: line <n>: <reason>").
struct CsvTable {
  std::string file;                             // as given, for messages
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;   // each as wide as the header
  std::vector<std::int64_t> lines;              // 1-based line in the file where each row starts

  // Index of the column named `name`, ignoring ASCII case; nullopt when absent.
  std::optional<std::size_t> column(std::string_view name) const;
  // Same, but a missing column is EngineError(input) naming the file and the column.
  std::size_t require_column(std::string_view name) const;
};

CsvTable parse_csv(std::string_view text, const std::string& file);
// Reads and parses `path`; a missing or unreadable file is EngineError(input).
CsvTable read_csv(const std::filesystem::path& path);
// Quotes a CSV field when it needs quoting (what parse_csv reads back); line breaks become spaces.
std::string csv_field(std::string_view text);

// ---------------------------------------------------------------- names and scores
// The slide's file stem: folders (/ or \) removed, then known slide and image extensions
// (.svs .tif .tiff .ndpi .mrxs .scn .bif .vms .vmu .svslide .czi .isyntax .dcm .qptiff .ome
// .png .jpg .jpeg .bmp .jp2 .webp, any case) removed from the end, repeatedly:
// "/data/a/S1.svs" -> "S1", "S2.ome.tiff" -> "S2", "TCGA-01.2" -> "TCGA-01.2".
std::string slide_stem(std::string_view path);

// "0", "1+", "2+", "3+" (also "1", "2", "3") -> 0..3; nullopt otherwise.
std::optional<int> parse_score_class(std::string_view text);
inline constexpr std::array<const char*, 4> kScoreLabels{"0", "1+", "2+", "3+"};

// ---------------------------------------------------------------- agreement statistics
struct ScorePair {
  int truth = 0;   // 0..3
  int engine = 0;  // 0..3
};
using ConfusionMatrix = std::array<std::array<std::int64_t, 4>, 4>;  // [truth][engine]

ConfusionMatrix confusion_matrix(const std::vector<ScorePair>& pairs);

enum class KappaWeighting { Unweighted, Linear, Quadratic };

// Cohen's kappa with disagreement weights w_ij = [i != j], |i-j|/3 or (i-j)^2/9:
// kappa = 1 - sum(w * observed) / sum(w * expected), expected_ij = row_i * col_j / n.
// NaN when undefined (no pairs, or both raters put every slide in the same single class).
double cohen_kappa(const ConfusionMatrix& m, KappaWeighting w);

struct Interval {
  double lower = 0;
  double upper = 0;
};
// Percentile bootstrap interval of the kappa: `resamples` resamples of the pairs with
// replacement from std::mt19937_64(seed) (index = draw % n), so the result is the same on every
// run and platform. Resamples where kappa is undefined are skipped; nullopt when fewer than 2
// pairs or no resample is defined.
std::optional<Interval> bootstrap_kappa_interval(const std::vector<ScorePair>& pairs, KappaWeighting w,
                                                 int resamples, std::uint64_t seed, double level = 0.95);

struct ClassAgreement {
  std::int64_t truth_n = 0;           // slides the reference put in this class
  std::int64_t engine_n = 0;          // slides the engine put in this class
  std::optional<double> sensitivity;  // correct / truth_n (nullopt when truth_n == 0)
  std::optional<double> precision;    // correct / engine_n (nullopt when engine_n == 0)
};

inline constexpr std::array<const char*, 3> kClinicalGroupLabels{"0/1+", "2+", "3+"};
inline int clinical_group(int score_class) { return score_class <= 1 ? 0 : score_class - 1; }

inline constexpr int kDefaultBootstrapResamples = 2000;
inline constexpr std::uint64_t kDefaultBootstrapSeed = 20180530;

struct ScoreAgreement {
  std::int64_t n = 0;
  double accuracy = 0;  // exact-class agreement
  ConfusionMatrix matrix{};
  double kappa_quadratic = 0, kappa_linear = 0, kappa_unweighted = 0;  // NaN when undefined
  std::optional<Interval> kappa_quadratic_ci;
  int bootstrap_resamples = 0;
  std::uint64_t bootstrap_seed = 0;
  std::array<ClassAgreement, 4> per_class{};
  std::array<std::array<std::int64_t, 3>, 3> clinical_matrix{};  // [truth group][engine group]
  double clinical_group_accuracy = 0;  // agreement on 0/1+ vs 2+ vs 3+
};

// Throws std::invalid_argument when `pairs` is empty or holds a class outside 0..3.
ScoreAgreement score_agreement(const std::vector<ScorePair>& pairs,
                               int resamples = kDefaultBootstrapResamples,
                               std::uint64_t seed = kDefaultBootstrapSeed);

struct BlandAltman {
  std::int64_t n = 0;
  double mean_absolute_error = 0;  // mean |engine - truth|
  double bias = 0;                 // mean (engine - truth)
  double sd_difference = 0;        // sample SD (n - 1) of the differences; 0 when n == 1
  double lower_limit = 0;          // bias - 1.96 SD
  double upper_limit = 0;          // bias + 1.96 SD
};
// Throws std::invalid_argument when the vectors are empty or of different lengths.
BlandAltman bland_altman(const std::vector<double>& truth, const std::vector<double>& engine);

// ---------------------------------------------------------------- the two input files
struct TruthRow {
  std::string file;   // the slide as the file names it
  std::string slide;  // stem
  int score = 0;
  std::optional<double> percent_complete;
  std::int64_t line = 0;
};
struct ResultRow {
  std::string slide;  // stem
  std::string status;
  std::optional<int> score;  // nullopt when status is not ok or the score is not-evaluable
  std::optional<double> percent_complete;
  std::string guideline;  // the rules the engine scored with (batch summary), when given
  std::int64_t line = 0;
};

// Columns slide,score[,percent_complete]; `file` and `ihc_score` are accepted for slide and
// score (a labels file as datasets ship it); bad score, bad or out-of-range (0-100) per cent, an
// empty slide name or a repeated stem is EngineError(input) naming file and line.
std::vector<TruthRow> read_truth(const CsvTable& csv);
// Columns slide,status,score,percent_complete (others ignored). A row with status "ok" needs a
// valid score or "not-evaluable" (an empty score counts as not-evaluable); rows with other
// statuses are kept with no score.
std::vector<ResultRow> read_results(const CsvTable& csv);

struct MatchedSlide {
  std::string slide;
  int truth = 0, engine = 0;
  std::optional<double> percent_complete_truth, percent_complete_engine;
};
struct ExcludedSlide {
  std::string slide;
  std::string reason;  // "status failed", "score not-evaluable"
};
struct SlideMatching {
  std::vector<MatchedSlide> matched;            // in truth-file order
  std::vector<ExcludedSlide> excluded;          // in results but not scored ok (matched or not)
  std::vector<std::string> unmatched_truth;     // in truth, absent from results
  std::vector<std::string> unmatched_results;   // scored ok in results, absent from truth
};
SlideMatching match_slides(const std::vector<TruthRow>& truth, const std::vector<ResultRow>& results);

}  // namespace ihc::engine
