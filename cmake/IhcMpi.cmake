# MPI for `ihcscore batch --mpi` (engine/cli/src/mpi_batch.cpp). Optional: without it the build works
# and `batch --mpi` says "built without MPI" (exit 2); `batch --shard K/N` needs no MPI.
option(IHC_WITH_MPI "Build batch --mpi with MPI (OpenMPI: Debian's openmpi-bin libopenmpi-dev)" ON)

set(IHC_HAVE_MPI OFF)
if(IHC_WITH_MPI)
  set(MPI_CXX_SKIP_MPICXX ON)  # the C API only: no deprecated C++ bindings
  find_package(MPI COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(IHC_HAVE_MPI ON)
    message(STATUS "ihcscore: batch --mpi with MPI ${MPI_CXX_VERSION} (${MPI_CXX_LIBRARIES})")
  else()
    message(WARNING "ihcscore: IHC_WITH_MPI is ON but no MPI was found; batch --mpi will say \"built without MPI\" "
                    "(install libopenmpi-dev, or pass -DIHC_WITH_MPI=OFF to silence this)")
  endif()
else()
  message(STATUS "ihcscore: IHC_WITH_MPI=OFF: batch --mpi is not available")
endif()

# Links MPI into `target` and defines IHC_HAVE_MPI=1 for it, when MPI is in this build.
function(ihc_link_mpi target)
  if(IHC_HAVE_MPI)
    target_link_libraries(${target} PRIVATE MPI::MPI_CXX)
    target_compile_definitions(${target} PRIVATE IHC_HAVE_MPI=1 OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
  endif()
endfunction()
