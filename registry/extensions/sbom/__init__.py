"""SBOM generation: merged layer view, package detectors, CycloneDX and SPDX documents."""
