import Foundation
import GRPCCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writing to stdout and stderr without buffering surprises: job output is bytes, written as
/// they arrive; messages are whole lines.
enum Terminal {
    /// Writes all of `bytes` to stdout. A closed pipe (`jobctl logs ID | head`) ends jobctl
    /// quietly with 141, as SIGPIPE would end a C program.
    static func writeOutput(_ bytes: Data) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written >= 0 {
                    offset += written
                } else if errno == EINTR {
                    continue
                } else if errno == EPIPE {
                    exit(141)
                } else {
                    fail("cannot write to stdout: \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    static func writeError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// `jobctl: <message>` on stderr, exit 1.
    static func fail(_ message: String) -> Never {
        writeError("jobctl: \(message)\n")
        exit(1)
    }
}

/// A failure with the one line the user sees.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    /// The server's status code, when the server refused.
    var code: RPCError.Code? = nil

    init(_ message: String, code: RPCError.Code? = nil) {
        self.message = message
        self.code = code
    }

    /// The server has no such job (or none the caller may see).
    var isNotFound: Bool { code == .notFound }

    /// Any error as one line: our own failures as they are, the rest by their description.
    init(_ error: any Error) {
        if let failure = error as? CommandFailure {
            self = failure
        } else {
            message = "\(error)"
        }
    }

    var description: String { message }
}
