# A stand-in for nixpkgs with just the attributes ptft's flake uses, each
# producing a trivial derivation. It lets `check-offline.sh` evaluate the
# real flake's structure (outputs, systems, attribute names) with no network.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
      pkgsFor = system:
        let
          stub = name: derivation { inherit name system; builder = "/bin/sh"; args = [ "-c" "echo stub > $out" ]; };
          tool = name: stub name;
        in {
          rustPlatform.buildRustPackage = a: (stub a.pname) // { meta = a.meta or { }; };
          mkShell = a: stub "ptft-shell";
          python3.withPackages = f: stub "python3-env";
          cargo = tool "cargo"; rustc = tool "rustc"; rustfmt = tool "rustfmt";
          clippy = tool "clippy"; cargo-nextest = tool "cargo-nextest";
        };
    in {
      lib = { inherit genAttrs; };
      legacyPackages = genAttrs systems pkgsFor;
    };
}
