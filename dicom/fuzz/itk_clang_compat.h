/* itk_clang_compat.h - force-included into the fuzz build's C++ sources. Debian's ITK 5.2 was
 * configured with GCC, and its itk_compiler_detection.h stops with "Unsupported compiler" on
 * any other. This includes it first (its include guard then keeps it) as GCC 12 would see it:
 * the same feature macros, so the same ITK class layouts as the library was built with. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wbuiltin-macro-redefined"
#pragma clang diagnostic ignored "-Wmacro-redefined"
#pragma push_macro("__clang__")
#pragma push_macro("__GNUC__")
#pragma push_macro("__GNUC_MINOR__")
#undef __clang__
#undef __GNUC__
#undef __GNUC_MINOR__
#define __GNUC__ 12
#define __GNUC_MINOR__ 2
#include <itk_compiler_detection.h>
#pragma pop_macro("__GNUC_MINOR__")
#pragma pop_macro("__GNUC__")
#pragma pop_macro("__clang__")
#pragma clang diagnostic pop
