// ProcessMemory: VmRSS and VmHWM read from /proc/<pid>/status text, and from this process.

import Experiment
import XCTest

final class ProcessMemoryTests: XCTestCase {
    func testReadsResidentAndPeakInBytes() {
        let status = """
        Name:\tfedmerge
        VmPeak:\t 2143572 kB
        VmSize:\t 2143572 kB
        VmHWM:\t  612344 kB
        VmRSS:\t  401020 kB
        Threads:\t5
        """
        XCTAssertEqual(ProcessMemory.parse(status: status), ProcessMemory(residentBytes: 401_020 * 1024, peakBytes: 612_344 * 1024))
    }

    func testAbsentOrMalformedFieldsGiveNil() {
        XCTAssertNil(ProcessMemory.parse(status: "Name:\tkthreadd\nThreads:\t1\n"), "kernel threads have no Vm lines")
        XCTAssertNil(ProcessMemory.parse(status: "VmHWM:\t 12 kB\n"), "VmRSS missing")
        XCTAssertNil(ProcessMemory.parse(status: "VmHWM:\t twelve kB\nVmRSS:\t 3 kB\n"))
        XCTAssertNil(ProcessMemory.parse(status: "VmHWM:\t 12 MB\nVmRSS:\t 3 kB\n"), "only kB is a unit the kernel writes")
    }

    func testThisProcessHasAPeakAtLeastItsResidentSet() throws {
        let before = try XCTUnwrap(ProcessMemory.current)
        XCTAssertGreaterThan(before.residentBytes, 0)
        XCTAssertGreaterThanOrEqual(before.peakBytes, before.residentBytes)
        // Touch 64 MiB more than the peak so far: the high-water mark must rise by it.
        let extra = 64 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(before.peakBytes) + extra)
        defer { buffer.deallocate() }
        for i in stride(from: 0, to: Int(before.peakBytes) + extra, by: 4096) { buffer[i] = 1 }
        let after = try XCTUnwrap(ProcessMemory.current)
        XCTAssertGreaterThanOrEqual(after.peakBytes, before.peakBytes + UInt64(extra))
        XCTAssertEqual(ProcessMemory.of(pid: getpid())?.peakBytes ?? 0, after.peakBytes, accuracy: 16 << 20)
    }
}
