#pragma once
// Staining artefacts that must not turn into membrane staining (issue 4).
//
// Cytoplasmic pattern. HER2 is scored on the membrane only; a cytoplasmic antigen (or a strong
// non-specific blush) fills the whole cell with DAB, and the wall between two filled cells is
// then a DAB ridge that the ray measurement reads as a membrane (a real colon IHC for FHL2, a
// cytoplasmic protein, scored 3+ before this rule). What separates it from a true membrane is
// the cytoplasm itself: HER2 3+ cells have a dark narrow line around a nearly clear cytoplasm,
// cytoplasmic stains have a dark cytoplasm with at most an accentuated border. So, per cell, the
// cytoplasm DAB is sampled along each ray away from the blurred membrane (from the nucleus to
// cytoplasm_gap_um inside the membrane peak) and compared with the membrane intensity. Per
// tile, when the membrane-positive cells' median ratio cytoplasm / membrane reaches
// cytoplasmic_tile_ratio (over at least cytoplasmic_min_cells of them) and their median cytoplasm
// is visibly stained (cytoplasmic_tile_min_od: faint membranes over JPEG and stain-vector noise
// give high ratios with a colourless cytoplasm), the tile's pattern is cytoplasmic. Then each
// of its membrane-positive cells whose own cytoplasm is visibly stained (cytoplasmic_min_od) and
// at least cytoplasmic_cell_ratio of its membrane, or whose cytoplasm could not be sampled, is
// flagged `cytoplasmic` and scored 0: its membrane is not distinguishable from its cytoplasm.
// The tile gate keeps the occasional cytoplasmic cell of a true membranous tumour from being
// demoted.
// Tile medians measured with the defaults (one tile each): FHL2 colon 0.52; the real HER2 2+ and
// 3+ patches 0.30 and 0.26; the independent generator's membranes 0.07-0.10, its 3+ over a
// 0.1-0.2 OD cytoplasmic blush about 0.21-0.25, its cytoplasmic-stain design 0.41 (the window
// includes the rim of the nucleus, which such stains spare, so it reads below the true 0.6).
// Inside a cytoplasmic tile a cell escapes only with a nearly clear cytoplasm: the cells left
// as membrane there are the ones whose window fell mostly on the nucleus, not crisp membranes.
//
// Pigment (in membrane.cpp's ray pass, the granule test in artefacts.cpp; parameters pigment_*
// in CellParams). Melanin, haemosiderin,
// formalin pigment and carbon are dark granules, not stain. A stained direction's peak is tested
// when it is brown-black (the half-resolution haematoxylin there is at least pigment_h_ratio x
// the peak's DAB: DAB alone deconvolves to little haematoxylin) and is an isolated granule: from
// the peak, two moves to the highest of the 8 neighbours, then no point at half that DAB on a
// ring of radius pigment_ring_um (a membrane crosses the ring twice). Such a peak is not
// membrane; the peak beyond the granule's outer flank is judged instead (twice at most), and a
// direction left with no membrane is a pigment direction. Granules strung along an outline leave
// "stained" directions between them (their blurred tails), so a stained-looking cell whose
// pigment directions are at least pigment_min_rays and pigment_cell_fraction of its
// stained-looking ones is flagged `pigment` and scored 0. Rings of granules 1.5-3.5 µm apart on
// most cells still read as beaded membranes, and pigment of DAB's own colour is not tested.
#include <vector>

#include "ihc/scoring/cells.hpp"

namespace ihc::scoring {

// What apply_cytoplasmic_pattern found on one tile.
struct CytoplasmicPattern {
  int assessed = 0;          // counted membrane-positive cells with a cytoplasm measurement
  double median_ratio = 0;   // their median cytoplasm_mean_od / intensity_od
  double median_cytoplasm_od = 0;  // their median cytoplasm_mean_od
  bool pattern = false;      // the tile's staining is cytoplasmic
  int flagged = 0;           // cells set to cytoplasmic (class 0)
};

// The tile rule above, on the cells of one tile (detect_cells applies it; exposed for tests).
CytoplasmicPattern apply_cytoplasmic_pattern(std::vector<Cell>& cells, const CellParams& params);

}  // namespace ihc::scoring
