#pragma once
// ASCO/CAP slide-level HER2 IHC rules applied to per-cent-of-tumour-cell figures.
// The rules are in ../shared/DOMAIN.md. Each guideline is one table (GuidelineRules): its
// thresholds, whether they are "more than" or "at least", and what a cell's lateral or
// basolateral (U-shaped) staining counts as. The score and the report's decisive margin both read
// it through decide(), so a threshold lives in one place. Pure and exhaustively tested.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ihc::scoring {

// Breast 2018 (affirmed 2023), breast 2007, and gastric / GEJ adenocarcinoma (ASCO/CAP/ASCP 2016).
enum class Guideline { AscoCap2018, AscoCap2007, Gastric };

// "asco-cap-2018" / "asco-cap-2007" / "gastric"; parse returns nullopt for anything else.
std::string_view to_string(Guideline g);
std::optional<Guideline> parse_guideline(std::string_view text);
inline constexpr std::array<const char*, 3> kGuidelineNames{"asco-cap-2018", "asco-cap-2007", "gastric"};

// Gastric rules depend on the specimen: a resection is scored on the per cent of tumour cells,
// a biopsy on its best cluster of at least five cohesive tumour cells.
enum class Specimen { Resection, Biopsy };
std::string_view to_string(Specimen s);  // "resection" / "biopsy"
std::optional<Specimen> parse_specimen(std::string_view text);

enum class CellClass : std::uint8_t { Negative = 0, OnePlus = 1, TwoPlus = 2, ThreePlus = 3 };
std::string_view to_string(CellClass c);  // "0", "1+", "2+", "3+"

enum class SlideScore { Zero, OnePlus, TwoPlus, ThreePlus, NotEvaluable };
std::string_view to_string(SlideScore s);  // "0", "1+", "2+", "3+", "not-evaluable"

// Clinical category that decides treatment (DESTINY-Breast04/06).
enum class Her2Category { Null, Ultralow, Low, Equivocal, Positive, NotEvaluable, Negative };
// "null", "ultralow", "low", "equivocal", "positive", "not-evaluable", "negative"
std::string_view to_string(Her2Category c);

// Per-cent of tumour cells in each class (sums to 100 when any cell was counted).
struct ClassPercent {
  double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
  double complete() const { return p2 + p3; }          // complete membrane (2+ and 3+)
  double complete_intense() const { return p3; }       // complete and intense (3+)
  double any_membrane() const { return p1 + p2 + p3; }  // any membrane staining
};

struct CellCounts {
  std::array<std::int64_t, 4> by_class{};  // indexed by CellClass
  std::int64_t total() const { return by_class[0] + by_class[1] + by_class[2] + by_class[3]; }
  ClassPercent percent() const;
  CellCounts& operator+=(const CellCounts& o);
};

struct RuleParams {
  // Automated cell classification never has a zero false-positive rate, so the rules' "any"
  // and "> 0 %" are read as "at least this per cent". Documented in docs/algorithm.md (Scoring rules).
  double noise_floor_percent = 1.0;
  // Gastric biopsy: the fewest cohesive tumour cells that make a cluster, and how far apart (µm,
  // nucleus centre to centre) two cells may be and still touch.
  int biopsy_cluster_cells = 5;
  double cohesive_um = 15.0;
};

// One guideline's slide rule: per cent thresholds, each either "more than" (strict) or "at
// least". A threshold of 0 means "at least the noise floor" (the rules' "any").
struct Threshold {
  double percent;
  bool strict;
};
struct GuidelineRules {
  Guideline guideline;
  Threshold three_plus;            // complete_intense
  Threshold two_plus;              // complete
  bool two_plus_few_intense;       // any complete-intense cells (above the noise floor) make 2+
  Threshold one_plus;              // any_membrane
  bool lateral_counts_complete;    // a cell's lateral / basolateral staining counts like complete
};
const GuidelineRules& rules_of(Guideline g);

// The score with the metric and threshold of the rule that placed it.
struct Decision {
  SlideScore score = SlideScore::NotEvaluable;
  const char* metric = "";   // "complete_intense", "complete" or "any_membrane"
  double threshold = 0;      // per cent
};
Decision decide(const ClassPercent& p, std::int64_t total_cells, Guideline g, const RuleParams& params = {});

// Slide score from class percentages. total_cells == 0 gives NotEvaluable.
SlideScore score_from_percent(const ClassPercent& p, std::int64_t total_cells, Guideline g,
                       const RuleParams& params = {});

// The value of one of decide()'s metrics.
double metric_value(const ClassPercent& p, std::string_view metric);

// HER2-null / ultralow / low / equivocal / positive from the IHC score alone
// (2+ is "equivocal" until ISH decides; with negative ISH it would be HER2-low). Null, ultralow
// and low are the breast categories (DESTINY-Breast04/06); under the gastric rules 0 and 1+ are
// "negative", as the 2016 guideline reports them.
Her2Category categorise(SlideScore s, const ClassPercent& p, const RuleParams& params = {},
                        Guideline g = Guideline::AscoCap2018);

}  // namespace ihc::scoring
