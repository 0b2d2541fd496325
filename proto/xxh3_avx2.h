#ifndef SOCKAGENT_PROTO_XXH3_AVX2_H_
#define SOCKAGENT_PROTO_XXH3_AVX2_H_

// Internal to StreamChecksum (proto/traffic_data.cc): XXH3's update built
// for AVX2, present only on x86-64 (SOCKAGENT_XXH3_AVX2 defined).

#include <cstddef>

namespace sockagent::internal {

// XXH3_64bits_update on an XXH3_state_t of xxhash.h's XXH_INLINE_ALL
// build. Call only when the CPU has AVX2.
void Xxh3UpdateAvx2(void* state, const void* data, size_t size);

}  // namespace sockagent::internal

#endif  // SOCKAGENT_PROTO_XXH3_AVX2_H_
