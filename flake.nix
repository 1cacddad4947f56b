{
  description = "ptft: reproducible, incremental workflows for the theory of how pretraining shapes fine-tuning";

  # The only input. Fetching it needs network access the first time
  # (`nix develop`, `nix build`); everything after that works offline.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = "ptft";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "ptft" ];
          # The test suite runs in CI (`.ci/run`); it needs a writable tree.
          doCheck = false;
          meta.mainProgram = "ptft";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo rustc rustfmt clippy cargo-nextest
            (python3.withPackages (ps: [ ps.pyarrow ps.pandas ps.polars ]))
          ];
        };
      });
    };
}
