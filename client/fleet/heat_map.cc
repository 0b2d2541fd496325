#include "client/fleet/heat_map.h"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "proto/errno_status.h"

namespace sockagent {
namespace fleet {
namespace {

struct Rgb {
  uint8_t r, g, b;
};

// Green (0) -> yellow (0.5) -> red (1).
Rgb Scale(double x) {
  x = std::clamp(x, 0.0, 1.0);
  if (x < 0.5) {
    return {static_cast<uint8_t>(40 + 400 * x), 190, 60};
  }
  return {240, static_cast<uint8_t>(190 - 300 * (x - 0.5)), 60};
}

}  // namespace

absl::Status WriteHeatMapPng(const std::string& path, size_t rows,
                             size_t columns,
                             const std::vector<MatrixCell>& cells) {
  if (rows == 0 || columns == 0 || cells.size() != rows * columns) {
    return absl::InvalidArgumentError(absl::StrCat(
        "heat map: ", cells.size(), " cells for ", rows, " x ", columns));
  }
  // Cells of 4..16 pixels, so that 100 x 100 stays readable and 3 x 3 is
  // not a dot; a 1-pixel white grid between them.
  const size_t cell = std::clamp<size_t>(1200 / std::max(rows, columns), 4, 16);
  const size_t width = columns * (cell + 1) + 1;
  const size_t height = rows * (cell + 1) + 1;
  absl::Duration fastest = absl::InfiniteDuration();
  absl::Duration slowest = absl::ZeroDuration();
  for (const MatrixCell& c : cells) {
    if (c.state != MatrixCell::State::kPassed) continue;
    fastest = std::min(fastest, c.latency);
    slowest = std::max(slowest, c.latency);
  }
  const double span = absl::ToDoubleSeconds(slowest - fastest);
  std::vector<uint8_t> image(width * height * 3, 255);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < columns; ++c) {
      const MatrixCell& m = cells[r * columns + c];
      Rgb color{160, 160, 160};
      if (m.state == MatrixCell::State::kFailed) {
        color = {0, 0, 0};
      } else if (m.state == MatrixCell::State::kPassed) {
        color = Scale(
            span <= 0 ? 0 : absl::ToDoubleSeconds(m.latency - fastest) / span);
      }
      for (size_t y = 0; y < cell; ++y) {
        uint8_t* row =
            &image[((r * (cell + 1) + 1 + y) * width + c * (cell + 1) + 1) * 3];
        for (size_t x = 0; x < cell; ++x) {
          row[3 * x] = color.r;
          row[3 * x + 1] = color.g;
          row[3 * x + 2] = color.b;
        }
      }
    }
  }
  FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return OsError(errno, absl::StrCat("open ", path));
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr) {
    png_destroy_write_struct(&png, &info);
    std::fclose(out);
    return absl::ResourceExhaustedError("heat map: libpng could not start");
  }
  // libpng reports errors by longjmp: nothing with a destructor lives
  // between here and the end of the write.
  std::vector<png_bytep> row_pointers(height);
  for (size_t y = 0; y < height; ++y) {
    row_pointers[y] = &image[y * width * 3];
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(out);
    return absl::InternalError(
        absl::StrCat("heat map: writing ", path, " failed in libpng"));
  }
  png_init_io(png, out);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width),
               static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, row_pointers.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fclose(out) != 0) {
    return OsError(errno, absl::StrCat("close ", path));
  }
  return absl::OkStatus();
}

}  // namespace fleet
}  // namespace sockagent
