#pragma once
// HER2 dual-probe in-situ hybridisation (ISH/FISH): signal counts -> ASCO/CAP 2018 group 1-5 and
// result, plus the older 2007 reading. Rules and boundaries as in ../shared/DOMAIN.md ("ISH rules").
//
// Every threshold is decided on the integer totals, never on divided doubles:
//   ratio >= 2.0      <=>  her2 >= 2 * cep17          mean HER2 >= 4.0  <=>  her2 >= 4 * cells
//   ratio >  2.2      <=>  10 * her2 > 22 * cep17     mean HER2 >= 6.0  <=>  her2 >= 6 * cells
//   ratio <  1.8      <=>  10 * her2 < 18 * cep17     mean HER2 >  6.0  <=>  her2 >  6 * cells
// so 40 HER2 / 20 CEP17 is exactly 2.0 and lands on the ">= 2.0" side.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ihc/scoring/guideline.hpp"

namespace ihc::scoring {

// Totals over all counted nuclei of the invasive tumour.
struct IshCounts {
  std::int64_t her2_signals = 0;
  std::int64_t cep17_signals = 0;
  std::int64_t cells = 0;
};

inline constexpr std::int64_t kIshMinCells = 20;  // ASCO/CAP: at least 20 cells counted
// Counts above this are refused as implausible; it keeps 22 * count and 1000 * count in int64.
inline constexpr std::int64_t kIshMaxCount = 1'000'000'000'000'000;

enum class IshResult { Positive, Negative, Equivocal, RequiresIhc };
// "positive", "negative", "equivocal", "requires-ihc" (2018 group 3 with no concurrent IHC).
std::string_view to_string(IshResult r);

struct IshAssessment {
  IshCounts counts;
  // Display values: the exact quotient rounded DOWN to 3 decimals, so a shown value is never on
  // the other side of a threshold from the exact one (1.9999 shows 1.999, not 2.000).
  double ratio = 0;                // HER2 signals / CEP17 signals
  double mean_her2_per_cell = 0;   // HER2 signals per cell
  double mean_cep17_per_cell = 0;  // CEP17 signals per cell

  int group = 0;                     // ASCO/CAP 2018 dual-probe group, 1-5
  std::optional<SlideScore> ihc;     // concurrent IHC score, when known
  IshResult result_2018 = IshResult::Negative;  // final 2018 result, taking `ihc` into account
  std::string comment;               // guideline comment for the group (and the IHC outcome)

  // 2007: dual-probe reading on the ratio (> 2.2 positive, 1.8-2.2 equivocal, < 1.8 negative);
  // the copy-number reading (> 6 positive, 4-6 equivocal, < 4 negative) is reported alongside
  // and does not change result_2007.
  IshResult result_2007 = IshResult::Negative;
  IshResult result_2007_copy_number = IshResult::Negative;
};

// Throws std::invalid_argument (one sentence) for negative counts, counts above kIshMaxCount,
// fewer than kIshMinCells cells, or no CEP17 signal (the ratio would be undefined).
void check_ish_counts(const IshCounts& counts);

// ASCO/CAP 2018 group 1-5 (calls check_ish_counts).
int ish_group_2018(const IshCounts& counts);

// The whole reading. `ihc` must be 0, 1+, 2+ or 3+ (NotEvaluable throws std::invalid_argument).
// Without `ihc`: groups 2 and 4 are negative (they turn positive only with IHC 3+), group 3 is
// RequiresIhc (positive with IHC 2+/3+, negative with IHC 0/1+).
IshAssessment assess_ish(const IshCounts& counts, std::optional<SlideScore> ihc = std::nullopt);

// "0", "1+", "2+", "3+" (also "1", "2", "3"); nullopt for anything else.
std::optional<SlideScore> parse_ihc_score(std::string_view text);

}  // namespace ihc::scoring
