// The `tls: {ca, cert, key}` section both daemons' configs share, read in one place.

import Protocol

extension TLSConfiguration {
    /// Reads `tls` from `top`; paths resolve against the config file's directory.
    public static func read(_ top: ConfigReader) throws -> TLSConfiguration {
        let tls = try top.section("tls")
        try tls.onlyKeys(["ca", "cert", "key"])
        return TLSConfiguration(caFile: try tls.path("ca", help: "the federation CA certificate (PEM)"),
                                certificateFile: try tls.path("cert", help: "this daemon's certificate (PEM)"),
                                keyFile: try tls.path("key", help: "this daemon's private key (PEM)"))
    }
}
