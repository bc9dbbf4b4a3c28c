#pragma once
// Colour stored at a coarser resolution than the pixels (JPEG chroma subsampling, 4:2:0 in most
// files that store YCbCr) put back where the stain is.
//
// A 4:2:0 JPEG keeps brightness (luma) per pixel but one colour (Cb, Cr) per 2 x 2 block. Where
// the block holds a dark nucleus beside pale cytoplasm, the dark pixels get the block's diluted
// colour: a rim that is dark but greyer than haematoxylin, which colour deconvolution reads as a
// DAB ring round every nucleus; a brown membrane narrower than the block takes on its
// neighbours' blue. Stain absorbs light in proportion to its density, so inside a block the
// colour belongs mostly to the pixels that absorb: each pixel gets the block's mean colour
// scaled by its share of the block's optical density (luma OD). Flat blocks are unchanged.
// Measured on the gastric cores re-encoded at 0.5 and 1 um/px (docs/validity.md).
#include <opencv2/core.hpp>

namespace ihc::scoring {

// In place on `rgb` (CV_8UC3, R first). `block_x`, `block_y`: pixels per colour sample (2, 2
// for 4:2:0; 1 in a direction leaves it alone); `offset_x`, `offset_y`: where the image's first
// pixel lies inside its block (0 .. block - 1), so blocks follow the file's grid. Partial blocks
// at the image's edges are treated as blocks of what they hold.
void restore_subsampled_chroma(cv::Mat& rgb, int block_x, int block_y, int offset_x = 0, int offset_y = 0);

}  // namespace ihc::scoring
