# Two entry points for people: `make test` and (later) `make demo`.
# Both install what is missing from Debian, configure with CMake and build.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
# A fixed seed: the mutations of a make-test run are the same on every run (campaigns use random ones).
FUZZ_SEED ?= 1
JOBS ?= $(shell nproc)
SHARED ?= $(abspath ../shared)

.PHONY: all deps build demo test test-asan fuzz test-noshared install package deb package-check clean

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
	  $(FUZZ_BUILD)/core/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_BUILD)/ $$dir; \
	  rm -rf $$dir; \
	done
	@set -e; for t in $(DICOM_FUZZERS); do \
	  dir=$$(mktemp -d); cp dicom/fuzz/corpus/$$t/* $$dir/; \
	  dict=""; if [ -f dicom/fuzz/$$t.dict ]; then dict="-dict=dicom/fuzz/$$t.dict"; fi; \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/dicom/fuzz/lsan.supp \
	  $(FUZZ_BUILD)/dicom/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) -rss_limit_mb=2048 -timeout=30 \
	    $$dict -artifact_prefix=$(FUZZ_BUILD)/ $$dir; \
	  rm -rf $$dir; \
	done

# Every test as a clone without ../shared runs it: the ground-truth folder pointed at an empty
# one (tests read $$AACLIP_SHARED_DIR at run time); fails when any test reports "skipped".
test-noshared: build
	@empty=$$(mktemp -d); cd $(BUILD) && AACLIP_SHARED_DIR=$$empty ctest --output-on-failure -j $(JOBS) \
	  | tee ctest-noshared.log; st=$$?; rmdir $$empty; \
	  if grep -q "Not Run\|Skipped" ctest-noshared.log; then echo "test-noshared: tests were skipped"; exit 1; fi; \
	  grep -q "100% tests passed" ctest-noshared.log

# Install into PREFIX (default /usr/local): bin/aaclip, libaaclip, headers, pkg-config and CMake
# files, share/aaclip (tokenizer, demo model, sample study), the man page, the Slicer module.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package: $(BUILD)/packages/aaclip_<version>-1_amd64.deb (CPack; Depends from
# dpkg-shlibdeps). `make package-check` installs it into a clean Debian 12 chroot (debootstrap,
# needs root and a mirror) and runs make-sample-study, score and the Slicer module there.
package deb: build
	cd $(BUILD) && cpack -G DEB
package-check: package
	./tools/check-deb-clean-install.sh $$(ls $(BUILD)/packages/aaclip_*_amd64.deb | tail -1)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
