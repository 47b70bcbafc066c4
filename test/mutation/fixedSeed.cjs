// Loaded (-r) into every test process of a mutation run: the property tests draw the same cases
// for every mutant and every run, so a mutant's status does not depend on chance.
require('fast-check').configureGlobal({ seed: 1913, interruptAfterTimeLimit: undefined });
