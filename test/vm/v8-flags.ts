/**
 * Preloaded into every node process of the IPVS VM tests (`NODE_OPTIONS=--import=<this file>`, which
 * the lab's agents and their helpers inherit): turns off V8's baseline (Sparkplug) and optimizing
 * (TurboFan) compilers. Under qemu TCG every piece of machine code V8 emits is translated again by
 * qemu, so in a start-up-bound test JIT tiers cost more than they save (importing the agent measured
 * ~96 s → ~41 s in the guest on a loaded host). `--no-opt` is not allowed in NODE_OPTIONS itself,
 * hence this file; the flags only affect code compiled after it runs, which is all the program's code.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-opt');
setFlagsFromString('--no-sparkplug');
