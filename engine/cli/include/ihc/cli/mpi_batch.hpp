#pragma once
// `mpirun -np N ihcscore batch INPUT --mpi --out DIR`: one batch across many processes and
// machines with MPI (engine/cli/src/mpi_batch.cpp).
//
// Rank 0 reads the input (collect_batch_input), settles what needs no scoring (input errors and
// slides already done with the same settings, as the single-process batch does), then hands the
// rest out one slide at a time, largest file first, to whichever rank is free. Every rank scores,
// rank 0 included: its main thread coordinates (the only thread that calls MPI, so
// MPI_THREAD_FUNNELED is enough) while a second thread scores. Every rank scores with its own
// --threads and writes DIR/<id>.json itself (atomically); only rank 0 writes the summary, after
// every finished slide, with the rows in input order: the same file as the single-process batch.
// With --shard K/N the MPI job runs that shard (summary-K-of-N.csv).
//
// A rank that dies ends the job (OpenMPI's default); every finished slide's report is already
// in DIR, so running the same command again resumes.
#include <atomic>

#include "ihc/cli/batch.hpp"

namespace ihc::cli {

// Whether this build has MPI (CMake option IHC_WITH_MPI and an MPI library found).
bool mpi_available();

// Initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED), runs the batch, finalises MPI. Rank 0
// returns what run_batch would; other ranks return kExitOk. Throws like run_batch on rank 0;
// EngineError(usage) "built without MPI" when mpi_available() is false.
int run_mpi_batch(const BatchOptions& options, const std::atomic<bool>* stop);

}  // namespace ihc::cli
