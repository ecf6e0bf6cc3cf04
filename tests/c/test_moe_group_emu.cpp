/* test_moe_group_emu.cpp - the device grouping of a prefill's expert slots
 * (cuda/kernels/moe_group_kernel.cuh) on the host SIMT emulator, against the host grouping it
 * replaces (the loop of backend_cuda.cu's matmul_id_grouped, written out again here): the order
 * and every tile equal, word for word; tiles past the count, up to the launch's bound, empty; the
 * count within the bound; the output rows of ids out of range NaN and every other row untouched.
 * Ids: a router's (k distinct experts a token), uniform, all on one expert, a few experts with
 * many slots, ids out of range (-1, n_expert, INT_MAX, INT_MIN) among them; slots from 1 to
 * past 32 x 32 x 5 (a warp's run longer than a chunk, runs ending mid-chunk, warps with none);
 * 1 to 256 experts; tiles of 64 slots (the kernels') and of 1, 7 and 1000. Compiled and run by
 * tests/test_gpu_kernels.py; prints "ok" or the failures. */
#define ORC_SIMT_EMU 1
#include "simt_emu.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "kernels/moe_group_kernel.cuh"

#define EMU_SEED 0x510E527FADE682D1ull
#include "emu_random.h"

using namespace orc_moe_group;

static int failures = 0, cases = 0;
static void fail(const std::string &m) {
    if (failures++ < 20) printf("FAIL %s\n", m.c_str());
}

/* The host grouping: stable counting sort by expert, then each expert's run cut into tiles. */
static void host_group(const std::vector<int32_t> &ids, int n_expert, int tn, std::vector<int32_t> &order,
                       std::vector<int32_t> &tiles) {
    const int64_t slots = (int64_t)ids.size();
    std::vector<int64_t> start(n_expert + 2, 0);
    auto bucket = [&](int32_t e) { return e >= 0 && e < n_expert ? e : n_expert; };
    for (int32_t e : ids) start[bucket(e) + 1]++;
    for (int e = 0; e <= n_expert; e++) start[e + 1] += start[e];
    order.assign(slots, -1);
    std::vector<int64_t> fill(start.begin(), start.end());
    for (int64_t i = 0; i < slots; i++) order[fill[bucket(ids[i])]++] = (int32_t)i;
    tiles.clear();
    for (int e = 0; e < n_expert; e++)
        for (int64_t q = start[e]; q < start[e + 1]; q += tn) {
            tiles.push_back(e);
            tiles.push_back((int32_t)q);
            tiles.push_back((int32_t)(start[e + 1] - q < tn ? start[e + 1] - q : tn));
        }
}

static void run_case(const char *what, const std::vector<int32_t> &ids, int n_expert, int tn) {
    cases++;
    const int64_t slots = (int64_t)ids.size(), rows = 3;
    const int64_t nt_max = max_tiles(slots, n_expert, tn);
    std::vector<int32_t> ref_order, ref_tiles;
    host_group(ids, n_expert, tn, ref_order, ref_tiles);
    const std::string tag = std::string(what) + ": slots " + std::to_string(slots) + ", experts " +
                            std::to_string(n_expert) + ", tn " + std::to_string(tn);
    if ((int64_t)ref_tiles.size() / 3 > nt_max) {
        fail(tag + ": the bound " + std::to_string(nt_max) + " is below the " + std::to_string(ref_tiles.size() / 3) +
             " tiles needed");
        return;
    }
    std::vector<int32_t> order(slots, -7), tiles(3 * nt_max, -7);
    std::vector<float> out(slots * rows, 12345.0f);
    emu::launch(dim3(1), dim3(THREADS), 0, [&] {
        moe_group_kernel(ids.data(), slots, n_expert, tn, nt_max, rows, order.data(), tiles.data(), out.data());
    });
    if (order != ref_order) fail(tag + ": order differs from the host's");
    for (size_t j = 0; j < tiles.size(); j++) {
        const int32_t want = j < ref_tiles.size() ? ref_tiles[j] : 0;
        if (tiles[j] != want) {
            fail(tag + ": tile word " + std::to_string(j) + " is " + std::to_string(tiles[j]) + ", the host's " +
                 std::to_string(want));
            break;
        }
    }
    for (int64_t i = 0; i < slots; i++) {
        const bool bad = ids[i] < 0 || ids[i] >= n_expert;
        for (int64_t r = 0; r < rows; r++) {
            const float v = out[i * rows + r];
            if (bad ? !isnan(v) : v != 12345.0f) {
                fail(tag + ": slot " + std::to_string(i) + (bad ? " (id out of range) not NaN" : " written"));
                r = rows, i = slots;
            }
        }
    }
}

int main() {
    const int64_t slot_counts[] = {1, 2, 31, 32, 33, 64, 100, 1023, 1024, 1025, 2048, 4095, 4096, 5121};
    const int experts[] = {1, 2, 4, 32, 33, 128, 255, 256};
    for (int ne : experts)
        for (int64_t slots : slot_counts) {
            std::vector<int32_t> ids(slots);
            /* a router's: k distinct experts a token */
            const int k = ne >= 8 ? 8 : ne;
            for (int64_t t = 0; t * k < slots; t++) {
                std::vector<int> pick;
                while ((int)pick.size() < k) {
                    const int e = (int)(rnd() % (uint64_t)ne);
                    bool dup = false;
                    for (int p : pick) dup |= p == e;
                    if (!dup) pick.push_back(e);
                }
                for (int j = 0; j < k && t * k + j < slots; j++) ids[t * k + j] = pick[j];
            }
            run_case("router", ids, ne, 64);
            for (auto &e : ids) e = (int32_t)(rnd() % (uint64_t)ne);
            run_case("uniform", ids, ne, 64);
            if (slots % 3 == 0) run_case("uniform", ids, ne, 7);
            if (slots % 5 == 0) run_case("uniform", ids, ne, 1);
            for (auto &e : ids) e = ne - 1;
            run_case("one expert", ids, ne, 64);
            run_case("one expert", ids, ne, 1000);
            for (auto &e : ids) e = unif() < 0.9 ? (int32_t)(rnd() % 3 % (uint64_t)ne) : (int32_t)(rnd() % (uint64_t)ne);
            run_case("skewed", ids, ne, 64);
            const int32_t bad[] = {-1, ne, INT_MAX, INT_MIN};
            for (int j = 0; j < 4 && j < slots; j++) ids[(int64_t)(rnd() % (uint64_t)slots)] = bad[j];
            run_case("ids out of range", ids, ne, 64);
        }
    if (failures) {
        printf("%d of %d cases failed\n", failures, cases);
        return 1;
    }
    printf("%d cases\nok\n", cases);
    return 0;
}
