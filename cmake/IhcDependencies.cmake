# Every dependency is a Debian 12 package installed by scripts/setup-deps.sh.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(TBB REQUIRED CONFIG)
find_package(TIFF REQUIRED)
# Plain PNG images and PNG outputs (OpenCV's imgcodecs only in the tests: see tiling/src/plain_image_slide.cpp).
find_package(PNG REQUIRED)
find_package(CLI11 REQUIRED CONFIG)
find_package(nlohmann_json 3 REQUIRED CONFIG)
# Aperio ImageScope annotation files (engine/src/roi_imagescope.cpp).
find_package(pugixml REQUIRED CONFIG)
pkg_check_modules(OPENSLIDE REQUIRED IMPORTED_TARGET openslide)
# GLib: OpenSlide logs through it; tiling captures those lines into its one-line errors.
pkg_check_modules(GLIB REQUIRED IMPORTED_TARGET glib-2.0)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
