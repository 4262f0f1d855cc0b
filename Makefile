# Two entry points for people: `make test` and (later) `make demo`.
# Both install what is missing from Debian, configure with CMake and build.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
JOBS ?= $(shell nproc)
SHARED ?= $(abspath ../shared)

.PHONY: all deps build demo test test-asan fuzz clean

all: build

deps:
	@./tools/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DAACLIP_SHARED_DIR=$(SHARED)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The main job on the bundled sample study with the demo model (synthetic data, random backbone:
# a pipeline demonstration, not a clinical model).
DEMO_OUT ?= demo-results
demo: build
	$(BUILD)/bin/aaclip score testdata/sample-study/dicom -o $(DEMO_OUT) --model testdata/demo-model --force
	@echo "demo: results in $(DEMO_OUT)/ (summary.json, summary.csv; per series: DICOM SEG/PMAP/SR,"
	@echo "demo: NIfTI/NRRD maps, scene.mrml for 3D Slicer, montage.png)"

# Sanitizer run and fuzzing first, the full test run last (its summary closes the output).
test: build
	$(MAKE) test-asan
	$(MAKE) fuzz
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Sanitizer build: the fast unit tests and the malformed-input tests under ASan/UBSan.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAACLIP_SANITIZE=ON -DAACLIP_SHARED_DIR=$(SHARED)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

# libFuzzer (clang) on the untrusted-input parsers, FUZZ_SECONDS each, on a copy of the seeds:
# the model readers (core/fuzz) and the ingestion layer (dicom/fuzz: CSA and mosaic, one DICOM
# file, DICOMDIR, grouping, a folder, NIfTI, NRRD, MetaImage; LeakSanitizer suppressions for
# what DCMTK and ITK leak on their own error paths in dicom/fuzz/lsan.supp).
DICOM_FUZZERS = csa dicom_file dicomdir series discover nifti nrrd metaimage
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAACLIP_FUZZ=ON -DAACLIP_SHARED_DIR=$(SHARED)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_unpickle fuzz_safetensors dicom_fuzzers
	@set -e; for t in unpickle safetensors; do \
	  dir=$$(mktemp -d); cp core/fuzz/corpus/$$t/* $$dir/; \
	  $(FUZZ_BUILD)/core/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_BUILD)/ $$dir; \
	  rm -rf $$dir; \
	done
	@set -e; for t in $(DICOM_FUZZERS); do \
	  dir=$$(mktemp -d); cp dicom/fuzz/corpus/$$t/* $$dir/; \
	  dict=""; if [ -f dicom/fuzz/$$t.dict ]; then dict="-dict=dicom/fuzz/$$t.dict"; fi; \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/dicom/fuzz/lsan.supp \
	  $(FUZZ_BUILD)/dicom/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=30 \
	    $$dict -artifact_prefix=$(FUZZ_BUILD)/ $$dir; \
	  rm -rf $$dir; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
