// image/exif_orientation.h — the EXIF Orientation tag (0x0112 in IFD0), read without a library.
//
// Why: phone JPEGs store pixels in sensor order plus an Orientation tag; PIL's exif_transpose (what
// the `load_image` path of transformers applies) rotates them upright. Only IFD0's tag is needed, so
// a small bounds-checked TIFF walk is enough. Malformed EXIF is never an error: it reads as 1
// (no rotation), as a viewer would show the image.
#pragma once

#include <cstdint>
#include <span>

namespace autoround {

// A TIFF structure ("II*\0" or "MM\0*", IFD0 offset, entries). Returns 1..8, or 1 when the tag is
// missing, malformed or out of range.
int exif_orientation_from_tiff(std::span<const uint8_t> tiff);

// The payload of a JPEG APP1 segment or a PNG eXIf chunk: "Exif\0\0" followed by TIFF; the
// prefix is optional (PNG eXIf usually omits it).
int exif_orientation_from_exif(std::span<const uint8_t> exif);

}  // namespace autoround
