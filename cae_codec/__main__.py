from cae_codec.cli import main

main()
