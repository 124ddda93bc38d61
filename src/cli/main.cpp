// cli/main.cpp — entry point of the single `autoround` binary (subcommands added per file).
#include <cstdio>
int main() { std::puts("autoround: under construction"); return 0; }
