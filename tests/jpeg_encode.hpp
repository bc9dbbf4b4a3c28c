#pragma once
// JPEG with a chosen colour subsampling, for tests of what 4:2:0 does to colour (OpenCV 4.6, as
// Debian 12 ships it, always writes 4:2:0).
#include <turbojpeg.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <opencv2/core.hpp>

namespace ihc::test {

// `rgb`: CV_8UC3, R first; `subsamp`: TJSAMP_444, TJSAMP_422, TJSAMP_420 ...
inline std::vector<std::uint8_t> encode_jpeg(const cv::Mat& rgb, int subsamp, int quality) {
  CV_Assert(rgb.type() == CV_8UC3 && rgb.isContinuous());
  tjhandle tj = tjInitCompress();
  if (!tj) throw std::runtime_error("TurboJPEG compressor");
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj, rgb.data, rgb.cols, 0, rgb.rows, TJPF_RGB, &buf, &size, subsamp, quality, 0);
  std::vector<std::uint8_t> out;
  if (rc == 0) out.assign(buf, buf + size);
  tjFree(buf);
  tjDestroy(tj);
  if (rc != 0) throw std::runtime_error("TurboJPEG could not encode");
  return out;
}

inline void write_jpeg(const std::filesystem::path& path, const cv::Mat& rgb, int subsamp, int quality = 90) {
  const auto bytes = encode_jpeg(rgb, subsamp, quality);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace ihc::test
