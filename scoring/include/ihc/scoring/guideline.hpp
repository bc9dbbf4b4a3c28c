#pragma once
// ASCO/CAP slide-level HER2 IHC rules applied to per-cent-of-tumour-cell figures.
// The rules are in ../shared/DOMAIN.md; the functions here are pure and exhaustively tested.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ihc::scoring {

enum class Guideline { AscoCap2018, AscoCap2007 };

// "asco-cap-2018" / "asco-cap-2007"; parse returns nullopt for anything else.
std::string_view to_string(Guideline g);
std::optional<Guideline> parse_guideline(std::string_view text);

enum class CellClass : std::uint8_t { Negative = 0, OnePlus = 1, TwoPlus = 2, ThreePlus = 3 };
std::string_view to_string(CellClass c);  // "0", "1+", "2+", "3+"

enum class SlideScore { Zero, OnePlus, TwoPlus, ThreePlus, NotEvaluable };
std::string_view to_string(SlideScore s);  // "0", "1+", "2+", "3+", "not-evaluable"

// Clinical category that decides treatment (DESTINY-Breast04/06).
enum class Her2Category { Null, Ultralow, Low, Equivocal, Positive, NotEvaluable };
std::string_view to_string(Her2Category c);  // "null", "ultralow", "low", "equivocal", "positive", "not-evaluable"

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
  // and "> 0 %" are read as "at least this per cent". Documented in README (Scoring rules).
  double noise_floor_percent = 1.0;
};

// Slide score from class percentages. total_cells == 0 gives NotEvaluable.
SlideScore score_slide(const ClassPercent& p, std::int64_t total_cells, Guideline g,
                       const RuleParams& params = {});

// HER2-null / ultralow / low / equivocal / positive from the IHC score alone
// (2+ is "equivocal" until ISH decides; with negative ISH it would be HER2-low).
Her2Category categorise(SlideScore s, const ClassPercent& p, const RuleParams& params = {});

}  // namespace ihc::scoring
