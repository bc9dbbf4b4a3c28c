#include "ihc/scoring/ish.hpp"

#include <stdexcept>

namespace ihc::scoring {
namespace {

// num / den rounded down to 3 decimals, computed on integers (num <= kIshMaxCount, den > 0).
double floor_3_decimals(std::int64_t num, std::int64_t den) {
  return static_cast<double>(num * 1000 / den) / 1000.0;
}

std::string ihc_outcome(int group, std::optional<SlideScore> ihc) {
  if (!ihc) {
    if (group == 3) return " No concurrent IHC score given: the result requires it.";
    return " No concurrent IHC score given: reported negative.";
  }
  const std::string score(to_string(*ihc));
  switch (*ihc) {
    case SlideScore::ThreePlus: return " Concurrent IHC 3+: HER2 positive.";
    case SlideScore::TwoPlus:
      return group == 3 ? " Concurrent IHC 2+: HER2 positive if the recount confirms group 3."
                        : " Concurrent IHC 2+: HER2 negative if the recount confirms group " +
                              std::to_string(group) + ".";
    default: return " Concurrent IHC " + score + ": HER2 negative.";
  }
}

}  // namespace

std::string_view to_string(IshResult r) {
  switch (r) {
    case IshResult::Positive: return "positive";
    case IshResult::Negative: return "negative";
    case IshResult::Equivocal: return "equivocal";
    case IshResult::RequiresIhc: return "requires-ihc";
  }
  return "?";
}

void check_ish_counts(const IshCounts& c) {
  if (c.her2_signals < 0 || c.cep17_signals < 0 || c.cells < 0)
    throw std::invalid_argument("signal and cell counts cannot be negative");
  if (c.her2_signals > kIshMaxCount || c.cep17_signals > kIshMaxCount || c.cells > kIshMaxCount)
    throw std::invalid_argument("counts above " + std::to_string(kIshMaxCount) + " are not plausible");
  if (c.cells < kIshMinCells)
    throw std::invalid_argument("ASCO/CAP needs at least " + std::to_string(kIshMinCells) +
                                " cells counted, got " + std::to_string(c.cells));
  if (c.cep17_signals == 0)
    throw std::invalid_argument("no CEP17 signal counted: the HER2/CEP17 ratio is undefined");
}

int ish_group_2018(const IshCounts& c) {
  check_ish_counts(c);
  const bool ratio_at_least_2 = c.her2_signals >= 2 * c.cep17_signals;
  const bool mean_at_least_4 = c.her2_signals >= 4 * c.cells;
  const bool mean_at_least_6 = c.her2_signals >= 6 * c.cells;
  if (ratio_at_least_2) return mean_at_least_4 ? 1 : 2;
  if (mean_at_least_6) return 3;
  return mean_at_least_4 ? 4 : 5;
}

IshAssessment assess_ish(const IshCounts& c, std::optional<SlideScore> ihc) {
  if (ihc && *ihc == SlideScore::NotEvaluable)
    throw std::invalid_argument("the concurrent IHC score must be 0, 1+, 2+ or 3+");
  IshAssessment a;
  a.counts = c;
  a.group = ish_group_2018(c);  // checks the counts
  a.ihc = ihc;
  a.ratio = floor_3_decimals(c.her2_signals, c.cep17_signals);
  a.mean_her2_per_cell = floor_3_decimals(c.her2_signals, c.cells);
  a.mean_cep17_per_cell = floor_3_decimals(c.cep17_signals, c.cells);

  static constexpr std::string_view kWorkup =
      " ASCO/CAP 2018 workup for groups 2-4: concurrent IHC on the same tissue, and a second reviewer,"
      " blinded to the first result, recounts at least 20 cells in the invasive tumour (required when"
      " IHC is 2+) before the result is final.";
  switch (a.group) {
    case 1:
      a.result_2018 = IshResult::Positive;
      a.comment = "Group 1 (HER2/CEP17 >= 2.0, mean HER2 >= 4.0 signals/cell): HER2 positive.";
      break;
    case 2:
      a.result_2018 = ihc == SlideScore::ThreePlus ? IshResult::Positive : IshResult::Negative;
      a.comment =
          "Group 2 (HER2/CEP17 >= 2.0, mean HER2 < 4.0 signals/cell): negative unless concurrent IHC is 3+;"
          " evidence on the benefit of HER2-targeted therapy in this group is limited.";
      break;
    case 3:
      if (!ihc) a.result_2018 = IshResult::RequiresIhc;
      else
        a.result_2018 = (*ihc == SlideScore::TwoPlus || *ihc == SlideScore::ThreePlus) ? IshResult::Positive
                                                                                       : IshResult::Negative;
      a.comment =
          "Group 3 (HER2/CEP17 < 2.0, mean HER2 >= 6.0 signals/cell): positive if concurrent IHC is 2+ or 3+,"
          " negative if IHC is 0 or 1+.";
      break;
    case 4:
      a.result_2018 = ihc == SlideScore::ThreePlus ? IshResult::Positive : IshResult::Negative;
      a.comment =
          "Group 4 (HER2/CEP17 < 2.0, mean HER2 >= 4.0 and < 6.0 signals/cell): negative unless concurrent"
          " IHC is 3+; it is uncertain whether these patients benefit from HER2-targeted therapy without"
          " protein overexpression.";
      break;
    default:
      a.result_2018 = IshResult::Negative;
      a.comment = "Group 5 (HER2/CEP17 < 2.0, mean HER2 < 4.0 signals/cell): HER2 negative.";
      break;
  }
  if (a.group >= 2 && a.group <= 4) {
    a.comment += ihc_outcome(a.group, ihc);
    a.comment += kWorkup;
  }

  // 2007, exact: ratio > 2.2 <=> 10 her2 > 22 cep17; ratio < 1.8 <=> 10 her2 < 18 cep17.
  const std::int64_t her2_x10 = 10 * c.her2_signals;
  if (her2_x10 > 22 * c.cep17_signals) a.result_2007 = IshResult::Positive;
  else if (her2_x10 < 18 * c.cep17_signals) a.result_2007 = IshResult::Negative;
  else a.result_2007 = IshResult::Equivocal;
  if (c.her2_signals > 6 * c.cells) a.result_2007_copy_number = IshResult::Positive;
  else if (c.her2_signals < 4 * c.cells) a.result_2007_copy_number = IshResult::Negative;
  else a.result_2007_copy_number = IshResult::Equivocal;
  return a;
}

std::optional<SlideScore> parse_ihc_score(std::string_view text) {
  if (text == "0") return SlideScore::Zero;
  if (text == "1+" || text == "1") return SlideScore::OnePlus;
  if (text == "2+" || text == "2") return SlideScore::TwoPlus;
  if (text == "3+" || text == "3") return SlideScore::ThreePlus;
  return std::nullopt;
}

}  // namespace ihc::scoring
